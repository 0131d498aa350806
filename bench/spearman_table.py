"""The analysis's bootstrap correlations (sweeper/analysis/_correlation.py `spearman_table`): CPU seconds on
synthetic trials, and a digest of the table, to compare two checkouts side by side.

    .venv/bin/python bench/spearman_table.py [--trials 10000] [--rounds 3] [--checkouts DIR DIR]

The table is 8 hyperparameter columns (4 continuous, 4 with ties) against 4 targets, as in an analysis of the
default study, with the analysis's 2,000 resamples. With `--checkouts` each round runs once per checkout, in a fresh
process, the order alternating; the digests must agree where the two compute the same table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkouts import compared, measure_alternating  # noqa: E402  (bench/, this script's folder)

REPO = Path(__file__).resolve().parents[1]


def measure(trials: int) -> dict:
    import numpy as np

    from sweeper.analysis._correlation import spearman_table

    rng = np.random.default_rng(0)
    columns = {f"p{i}": rng.random(trials) if i < 4 else rng.integers(0, 5, trials).astype(float) for i in range(8)}
    targets = {f"t{i}": rng.random(trials) + columns[f"p{i}"] for i in range(4)}
    started = time.process_time()
    table = spearman_table(columns, targets)
    return {"cpu_s": time.process_time() - started,
            "digest": hashlib.md5(repr(sorted(table.items())).encode()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[REPO])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.trials)))
        return
    print(f"# bench/spearman_table.py: {args.trials} trials, 8 columns x 4 targets; CPU s per round")
    results = measure_alternating(
        __file__, ["--measure", "--trials", str(args.trials)], args.checkouts, args.rounds,
        lambda row: f"{row['cpu_s']:.2f} s, digest {row['digest']}",
    )
    print("\n".join(compared(results, ["cpu_s"], 2, "same table")))


if __name__ == "__main__":
    main()
