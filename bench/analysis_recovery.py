"""Does the effect-shape analysis recover a known truth? Studies with planted objectives, stored in real Optuna
storage (SQLite), read back and analysed as a sweep's would be.

Each study has five parameters on [0, 1] (the first on a log scale, as a learning rate is) and one minimised target:

    y = 4 (u - 0.6)^2  +  1.0 x_monotone  +  1.5 x_a x_b  +  noise,   u = the log position of `learning_rate`

so `learning_rate` has an optimum inside the range (at position 0.6), `x_monotone` an increasing effect, `x_a` and
`x_b` an interaction (each increasing once the other is averaged over), and `x_null` none. Per trial count and noise
level, over several seeds, it prints: the share of planted shapes recovered (4 parameters per seed), the share of
seeds whose optimum interval holds the planted location (among those that found the optimum), and the share of
seeds that report an effect for `x_null` (false positives).

    .venv/bin/python bench/analysis_recovery.py                     # 24/48/96 trials, noise 0.05/0.2, 10 seeds
    .venv/bin/python bench/analysis_recovery.py --trials 48 --seeds 20
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution

from sweeper.analysis._shapes import DECREASING, INCREASING, OPTIMUM_INSIDE, ParameterAxis, effect_shapes

LR_RANGE = (1e-5, 3e-2)
PLANTED_POSITION = 0.6
PARAMETERS = ("learning_rate", "x_monotone", "x_a", "x_b", "x_null")
EXPECTED = {"learning_rate": OPTIMUM_INSIDE, "x_monotone": INCREASING, "x_a": INCREASING, "x_b": INCREASING}
TARGETS = {"shapes at 48 trials, low noise": 0.90, "interval coverage": 0.85, "false positives": 0.05}


def planted_location() -> float:
    low, high = (math.log10(v) for v in LR_RANGE)
    return 10 ** (low + PLANTED_POSITION * (high - low))


def store_planted_study(url: str, n_trials: int, noise: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    distributions = {"learning_rate": FloatDistribution(*LR_RANGE, log=True)}
    distributions.update({name: FloatDistribution(0.0, 1.0) for name in PARAMETERS[1:]})
    study = optuna.create_study(study_name="planted", storage=url, direction="minimize")
    low, high = (math.log10(v) for v in LR_RANGE)
    for _ in range(n_trials):
        u = rng.uniform()
        params = {"learning_rate": 10 ** (low + u * (high - low))}
        params.update({name: float(rng.uniform()) for name in PARAMETERS[1:]})
        value = (4 * (u - PLANTED_POSITION) ** 2 + params["x_monotone"] + 1.5 * params["x_a"] * params["x_b"]
                 + rng.normal(0.0, noise))
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))


def analyse_stored(url: str, seed: int) -> dict:
    trials = optuna.load_study(study_name="planted", storage=url).get_trials(deepcopy=False)
    axes = [ParameterAxis("learning_rate", True), *(ParameterAxis(name, False) for name in PARAMETERS[1:])]
    values = {name: [t.params[name] for t in trials] for name in PARAMETERS}
    shapes = effect_shapes(axes, values, {"y": [t.value for t in trials]}, {"y": False}, seed=seed)
    return {shape.parameter: shape for shape in shapes}


def run(trial_counts: list[int], noises: list[float], seeds: int) -> list[dict]:
    rows = []
    planted = planted_location()
    with tempfile.TemporaryDirectory(prefix="sweeper-recovery-") as folder:
        for n_trials in trial_counts:
            for noise in noises:
                recovered = found = covered = false_positive = 0
                started = time.perf_counter()
                for seed in range(seeds):
                    url = f"sqlite:///{Path(folder) / f'planted-{n_trials}-{noise}-{seed}.db'}"
                    store_planted_study(url, n_trials, noise, seed)
                    shapes = analyse_stored(url, seed)
                    recovered += sum(shapes[name].shape == shape for name, shape in EXPECTED.items())
                    optimum = shapes["learning_rate"]
                    if optimum.shape == OPTIMUM_INSIDE:
                        found += 1
                        covered += optimum.optimum_low <= planted <= optimum.optimum_high
                    false_positive += shapes["x_null"].shape in (INCREASING, DECREASING, OPTIMUM_INSIDE)
                rows.append(dict(
                    trials=n_trials, noise=noise, seeds=seeds,
                    shapes=recovered / (len(EXPECTED) * seeds),
                    optimum_found=found / seeds,
                    coverage=covered / found if found else float("nan"),
                    false_positives=false_positive / seeds,
                    seconds=(time.perf_counter() - started) / seeds,
                ))
                print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    print(f"| {row['trials']:>6} | {row['noise']:>5} | {row['seeds']:>5} | {row['shapes']:>15.0%} | "
          f"{row['optimum_found']:>13.0%} | {row['coverage']:>17.0%} | {row['false_positives']:>15.0%} | "
          f"{row['seconds']:>13.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[24, 48, 96])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.2])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"# bench/analysis_recovery.py on {platform.node()}: python {platform.python_version()}")
    print(f"# planted optimum of learning_rate at {planted_location():.3g}; target spread about 2.5")
    print("| trials | noise | seeds | shapes recovered | optimum found | interval coverage | false positives | s per study |")
    print("|---|---|---|---|---|---|---|---|")
    rows = run(args.trials, args.noise, args.seeds)
    low_noise = min(args.noise)
    at_48 = [r for r in rows if r["trials"] == 48 and r["noise"] == low_noise]
    found = [r for r in rows if r["optimum_found"]]
    coverage = (sum(r["coverage"] * r["optimum_found"] * r["seeds"] for r in found)
                / max(1, sum(r["optimum_found"] * r["seeds"] for r in found)))
    false_positives = sum(r["false_positives"] * r["seeds"] for r in rows) / sum(r["seeds"] for r in rows)
    print()
    if at_48:
        met = "met" if at_48[0]["shapes"] >= TARGETS["shapes at 48 trials, low noise"] else "NOT met"
        print(f"shapes recovered at 48 trials, noise {low_noise}: {at_48[0]['shapes']:.0%} (target >= 90%: {met})")
    print(f"interval coverage over all runs that found the optimum: {coverage:.0%} "
          f"(target >= 85%: {'met' if coverage >= TARGETS['interval coverage'] else 'NOT met'})")
    print(f"false positives for x_null over all runs: {false_positives:.0%} "
          f"(target <= 5%: {'met' if false_positives <= TARGETS['false positives'] else 'NOT met'})")


if __name__ == "__main__":
    main()
