"""Importing a stack with the cyclic garbage collector running and paused (`sweeper._command.collector_paused`).

    .venv/bin/python bench/import_collector.py [--rounds 7]

Each measure is a fresh Python process importing one stack and printing its own import time (interpreter start-up
excluded): `training`, what `sweeper sweep` and `sweeper worker` import before their first trial (`sweeper.study`,
`sweeper.storage`, `sweeper.sweep`, `sweeper.training`: torch, transformers, datasets, TRL); `analysis`, what the
hand-off helper imports (`sweeper.hand_off`'s `STUDY_STACK`, `STATISTICS_STACK` and `REPORT_STACK`: SQLAlchemy,
Optuna, SciPy, scikit-learn, plotly). Each stack is imported as it is (the collector running, as a hand-written loop
does) and inside `collector_paused()`, the two alternating within each round; the ratio paused / running is taken
within each round. Printed: median [min, max]
over the rounds, and what the paused import left uncollected (the cycles that freezing keeps for the process's life).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _spread import spread  # noqa: E402  (bench/, this script's folder)

STACKS = {
    "training": "import sweeper.study, sweeper.storage, sweeper.sweep, sweeper.training",
    "analysis": "import importlib\n"
                "from sweeper.hand_off import REPORT_STACK, STATISTICS_STACK, STUDY_STACK\n"
                "for module in (*STUDY_STACK, *STATISTICS_STACK, *REPORT_STACK): importlib.import_module(module)",
}

PROBE = """
import gc, json, time
from sweeper._command import collector_paused
paused = {paused}
started = time.perf_counter()
if paused:
    with collector_paused():
        exec({imports!r})
else:
    exec({imports!r})
import_s = time.perf_counter() - started
gc.unfreeze()
print(json.dumps({{"import_s": import_s, "left": gc.collect()}}))
"""


def measure(stack: str, paused: bool) -> dict:
    code = PROBE.format(paused=paused, imports=STACKS[stack])
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"# bench/import_collector.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/import_collector.py " + " ".join(sys.argv[1:]))
    print(f"# {args.rounds} rounds; per stack, collector running and paused alternate, their order swapping per round")
    for stack in STACKS:
        running, paused, ratios, left = [], [], [], []
        for round_index in range(args.rounds):
            order = (False, True) if round_index % 2 == 0 else (True, False)
            times = {}
            for is_paused in order:
                result = measure(stack, is_paused)
                times[is_paused] = result["import_s"]
                if is_paused:
                    left.append(result["left"])
            running.append(times[False])
            paused.append(times[True])
            ratios.append(times[True] / times[False])
        print(f"{stack}: running {spread(running)} s; paused {spread(paused)} s; paused / running {spread(ratios)}; "
              f"left uncollected when paused {spread(left, 0)} objects")


if __name__ == "__main__":
    main()
