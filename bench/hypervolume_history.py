"""The analysis's hypervolume history at study sizes: every prefix recomputed (before) against the incremental
front (now, sweeper/analysis/_pareto.py), interleaved, over seeds.

    .venv/bin/python bench/hypervolume_history.py [--sizes 1000 5000] [--seeds 3]

Points are two objectives of a noisy trade-off (a front of tens of trials, like a real study's). Prints, per size,
the seconds of each method per seed, the ratio incremental / prefix (median and range), and the incremental
method's seconds at 10,000 trials with its growth exponent from 1,000. Both results are checked equal.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from sweeper.analysis._pareto import _running_hypervolume, reference_point
from sweeper.storage import compute_hypervolume


def _points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fit = rng.uniform(0, 1, n)
    return np.column_stack([fit + rng.normal(0, 0.3, n), -fit + rng.normal(0, 0.3, n)])  # both minimised


def _prefix(points: np.ndarray, reference: np.ndarray) -> list[float]:
    return [float(compute_hypervolume(points[: k + 1], reference)) for k in range(len(points))]


def _timed(method, points, reference) -> tuple[float, list[float]]:
    started = time.process_time()
    result = method(points, reference)
    return time.process_time() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("# bench/hypervolume_history.py: CPU seconds; prefix = every prefix recomputed, incremental = sweeper's")
    for n in args.sizes:
        ratios, lines = [], []
        for seed in range(args.seeds):
            points = _points(n, seed)
            reference = reference_point(points)
            order = [(_prefix, "prefix"), (_running_hypervolume, "incremental")]
            if seed % 2:  # interleaved: alternate which runs first
                order.reverse()
            seconds = {}
            results = {}
            for method, name in order:
                seconds[name], results[name] = _timed(method, points, reference)
            assert np.allclose(results["prefix"], results["incremental"], rtol=1e-12, atol=1e-12)
            ratios.append(seconds["incremental"] / seconds["prefix"])
            lines.append(f"  seed {seed}: prefix {seconds['prefix']:.3f} s, incremental {seconds['incremental']:.4f} s")
        print(f"{n} trials: incremental / prefix = {statistics.median(ratios):.3f} "
              f"[{min(ratios):.3f}, {max(ratios):.3f}] over {args.seeds} seeds")
        print("\n".join(lines))
    small, large = 1000, 10000
    times = {}
    for n in (small, large):
        points = _points(n, 0)
        times[n] = statistics.median(_timed(_running_hypervolume, points, reference_point(points))[0] for _ in range(3))
    exponent = math.log(times[large] / times[small]) / math.log(large / small)
    print(f"incremental at {large} trials: {times[large]:.3f} s; growth exponent {small}->{large}: {exponent:.2f}")


if __name__ == "__main__":
    main()
