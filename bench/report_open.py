"""How long reports take to open in headless Chromium: each file opened in turn, rounds alternating the order.

    .venv/bin/python bench/report_open.py REPORT.html [OTHER.html ...] [--rounds 3] [--window 1280,900]

Per opening, in seconds after the page's first script ran: its load event; the figures near the first view drawn
(the report marks it; a report that draws every figure before its load event has them at load); and every figure
drawn (likewise); then the wall seconds of the whole Chromium run (its start included: about 2.3 s here for an empty
plotly page). Then per file the median [min, max] of each, and each file's times over the first file's within
rounds. Run it on a quiet machine: Chromium's drawing is wall time. Chromium draws WebGL (parallel coordinates,
large scatter plots) in software here, as in the report's tests. The default window is the one the report's tests
use, 4,200 pixels tall; --window 1280,900 is a laptop's screen.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _spread import spread  # bench/, this script's folder

# first in <head>: the times from here to the load event and to the report's marks, on attributes --dump-dom prints
PROBE = """<script>(function () { var t0 = performance.now(); var root = document.documentElement;
  var at = function (name) { root.setAttribute('data-' + name + '-ms', String(Math.round(performance.now() - t0))); };
  new PerformanceObserver(function (list) { list.getEntries().forEach(function (entry) {
    root.setAttribute('data-' + entry.name + '-ms', String(Math.round(entry.startTime - t0))); }); })
    .observe({entryTypes: ['mark']});
  window.addEventListener('load', function () { at('load'); }); })();
</script>"""
MEASURES = ("load", "first view", "all figures")


def open_once(page: Path, chromium: str, window: str) -> dict[str, float]:
    started = time.perf_counter()
    run = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
         f"--window-size={window}", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    wall = time.perf_counter() - started
    root = re.search(r"<html[^>]*>", run.stdout)
    found = dict(re.findall(r'data-([a-z-]+)-ms="(\d+)"', root.group(0))) if root else {}
    if run.returncode != 0 or "load" not in found:
        sys.exit(f"{page}: Chromium did not load it (exit {run.returncode}):\n{run.stderr[-2000:]}")
    load = int(found["load"]) / 1000
    return {
        "load": load,
        "first view": int(found.get("sweeper-figures-near", found["load"])) / 1000,
        "all figures": int(found.get("sweeper-figures-all", found["load"])) / 1000,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", default="1280,4200", help="Chromium's window, width,height in pixels")
    args = parser.parse_args()
    names = ("chromium", "chromium-browser", "google-chrome")
    chromium = next((path for name in names if (path := shutil.which(name))), None)
    if chromium is None:
        sys.exit("no headless Chromium on PATH; install Debian's package: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="sweeper-report-open-") as folder:
        probed = []
        for index, report in enumerate(args.reports):
            path = Path(folder) / f"{index}-{report.name}"
            path.write_text(report.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
            probed.append(path)
        results: list[dict[int, dict[str, float]]] = []
        for round_index in range(args.rounds):
            order = list(range(len(probed)))
            if round_index % 2:
                order.reverse()
            results.append({index: open_once(probed[index], chromium, args.window) for index in order})
            print(f"round {round_index + 1}: " + "; ".join(
                f"{args.reports[i].name} " + ", ".join(f"{m} {results[-1][i][m]:.2f}" for m in MEASURES)
                + f" s ({results[-1][i]['wall']:.2f} s wall)" for i in order), flush=True)
    print(f"## over {args.rounds} rounds, median [min, max] s; window {args.window}")
    for index, report in enumerate(args.reports):
        line = ", ".join(f"{m} {spread([r[index][m] for r in results], 2)}" for m in MEASURES + ("wall",))
        print(f"{report}: {line}")
        if index:
            ratios = ", ".join(f"{m} {spread([r[index][m] / r[0][m] for r in results], 2)}" for m in MEASURES)
            print(f"  over {args.reports[0].name}'s: {ratios}")


if __name__ == "__main__":
    main()
