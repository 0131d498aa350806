"""What the analysis reads from the curves table: every point of the study (before) against the two loss metrics
it uses, selected in SQL (now), interleaved over rounds, on a SQLite study of N trials with ~550 points each.

    .venv/bin/python bench/curve_reads.py [--trials 1000] [--rounds 3]

Prints CPU seconds and rows of each read per round, the ratio now / before (median and range), and the peak
Python memory of each (tracemalloc).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from sweeper.analysis._fit import LOSS_METRICS
from sweeper.metrics import ORPO_METRICS, CurvePoint
from sweeper.storage import CurveStore

TRAIN_STEPS, EVAL_STEPS = range(4, 148, 4), range(12, 148, 12)  # the default study's logging and evaluation


def _build(store: CurveStore, study: str, trials: int) -> None:
    for number in range(trials):
        points = [CurvePoint(step, "train", metric, 1.0 / step) for step in TRAIN_STEPS for metric in ORPO_METRICS]
        points += [CurvePoint(step, "eval", metric, 2.0 / step) for step in EVAL_STEPS for metric in ORPO_METRICS]
        store.write(study, number, points)


def _measure(read) -> tuple[float, int, int]:
    tracemalloc.start()
    started = time.process_time()
    rows = read()
    seconds = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, len(rows), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, CurveStore(f"sqlite:///{Path(folder) / 'curves.db'}") as store:
        _build(store, "scale", args.trials)
        reads = {"every point": lambda: store.read("scale"),
                 "loss metrics": lambda: store.read("scale", metrics=LOSS_METRICS)}
        ratios, memory = [], {}
        print(f"# bench/curve_reads.py: {args.trials} trials; CPU seconds, rows, peak Python memory")
        for round_ in range(args.rounds):
            order = list(reads) if round_ % 2 == 0 else list(reversed(reads))
            measured = {name: _measure(reads[name]) for name in order}
            for name, (seconds, rows, peak) in measured.items():
                memory[name] = peak
                print(f"  round {round_}: {name}: {seconds:.2f} s, {rows} rows, {peak / 2**20:.0f} MiB")
            ratios.append(measured["loss metrics"][0] / measured["every point"][0])
        print(f"loss metrics / every point, CPU s: {statistics.median(ratios):.3f} "
              f"[{min(ratios):.3f}, {max(ratios):.3f}]; memory {memory['loss metrics'] / memory['every point']:.3f}")


if __name__ == "__main__":
    main()
