"""How long reports take to open in headless Chromium: each file opened in turn, rounds alternating the order.

    .venv/bin/python bench/report_open.py REPORT.html [OTHER.html ...] [--rounds 3] [--window 1280,900]

Per opening, in wall seconds after Chromium asked for the page: its load event; the figures near the first view
drawn (the report marks it; a report that draws every figure before its load event has them at load); every figure
drawn (likewise); and the whole Chromium run (its start included: about 2.3 s here for an empty plotly page). The
page is served from a local HTTP server and tells it each moment as it happens, so the times are the machine's
clock: the page's own clock runs on Chromium's virtual time, which stands still while the page is busy after its
load event. Then per file the median [min, max] of each, and each file's times over the first file's within rounds.
Run it on a quiet machine: Chromium's drawing is wall time. Chromium draws WebGL (parallel coordinates, large
scatter plots) in software here, as in the report's tests. The default window is the one the report's tests use,
4,200 pixels tall; --window 1280,900 is a laptop's screen.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _spread import spread  # bench/, this script's folder

# first in <head>: tells the server when the load event came and when the report marked its figures drawn
PROBE = """<script>(function () {
  var tell = function (name) { fetch('/moment/' + name, {method: 'POST', keepalive: true}); };
  new PerformanceObserver(function (list) { list.getEntries().forEach(function (entry) { tell(entry.name); }); })
    .observe({entryTypes: ['mark']});
  window.addEventListener('load', function () { tell('load'); }); })();
</script>"""
MEASURES = ("load", "first view", "all figures")


class Moments(SimpleHTTPRequestHandler):
    """Serves the folder; records when the page was asked for and each moment the page tells."""

    asked: dict[str, float] = {}

    def do_GET(self):
        Moments.asked.setdefault("page", time.perf_counter())
        super().do_GET()

    def do_POST(self):
        Moments.asked[self.path.rsplit("/", 1)[-1]] = time.perf_counter()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def open_once(url: str, chromium: str, window: str) -> dict[str, float]:
    Moments.asked = {}
    started = time.perf_counter()
    run = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
         f"--window-size={window}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=300,
    )
    wall = time.perf_counter() - started
    moments = dict(Moments.asked)
    if run.returncode != 0 or "load" not in moments:
        sys.exit(f"{url}: Chromium did not load it (exit {run.returncode}):\n{run.stderr[-2000:]}")
    load = moments["load"]
    return {
        "load": load - moments["page"],
        "first view": moments.get("sweeper-figures-near", load) - moments["page"],
        "all figures": moments.get("sweeper-figures-all", load) - moments["page"],
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
        server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Moments(*a, directory=folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        urls = [f"http://127.0.0.1:{server.server_port}/{path.name}" for path in probed]
        results: list[dict[int, dict[str, float]]] = []
        for round_index in range(args.rounds):
            order = list(range(len(probed)))
            if round_index % 2:
                order.reverse()
            results.append({index: open_once(urls[index], chromium, args.window) for index in order})
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
