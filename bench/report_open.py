"""How long reports take to open in headless Chromium: each file opened in turn, rounds alternating the order.

    .venv/bin/python bench/report_open.py REPORT.html [OTHER.html ...] [--rounds 3]

Per opening: the wall seconds of the whole Chromium run (its start included: about 2.3 s here for an empty plotly
page) and the page's own load event, ms after its first script ran; then per file the median [min, max], and each
file's load time over the first file's within rounds. Run it on a quiet machine: Chromium's drawing is wall time.
Chromium draws WebGL (parallel coordinates, large scatter plots) in software here, as in the report's tests.
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

# first in <head>: the time from here to the load event, on an attribute --dump-dom prints
PROBE = """<script>(function () { var t0 = performance.now(); window.addEventListener('load', function () {
  document.documentElement.setAttribute('data-load-ms', String(Math.round(performance.now() - t0))); }); })();
</script>"""


def open_once(page: Path, chromium: str) -> tuple[float, float]:
    started = time.perf_counter()
    run = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
         "--window-size=1280,4200", "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    wall = time.perf_counter() - started
    found = re.search(r'data-load-ms="(\d+)"', run.stdout)
    if run.returncode != 0 or not found:
        sys.exit(f"{page}: Chromium did not load it (exit {run.returncode}):\n{run.stderr[-2000:]}")
    return wall, int(found.group(1)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
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
        results: list[dict[int, tuple[float, float]]] = []
        for round_index in range(args.rounds):
            order = list(range(len(probed)))
            if round_index % 2:
                order.reverse()
            results.append({index: open_once(probed[index], chromium) for index in order})
            print(f"round {round_index + 1}: " + "; ".join(
                f"{args.reports[i].name} {results[-1][i][1]:.2f} s load ({results[-1][i][0]:.2f} s wall)"
                for i in order), flush=True)
    print(f"## over {args.rounds} rounds, median [min, max]")
    for index, report in enumerate(args.reports):
        line = (f"{report}: load {spread([r[index][1] for r in results], 2)} s, "
                f"Chromium run {spread([r[index][0] for r in results], 2)} s")
        if index:
            line += f"; load / {args.reports[0].name}'s {spread([r[index][1] / r[0][1] for r in results], 2)}"
        print(line)


if __name__ == "__main__":
    main()
