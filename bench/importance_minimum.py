"""How many trials an importance needs: how often each evaluator ranks first the one parameter that sets the target.

    .venv/bin/python bench/importance_minimum.py [--params 6] [--sizes 4 5 7 10 20] [--draws 30]

Each draw: `--params` parameters uniform on [0, 1], a target equal to the first one plus noise (sd 0.05), N trials;
the importances are sweeper's own (`sweeper.analysis._importance.importances_for`, Optuna's fANOVA and PED-ANOVA),
with the minimum number of trials lifted to compute them at every N. Printed per N: in how many draws each evaluator's
largest share went to the parameter that sets the target (chance: one in `--params`). The analysis computes
importances only from one trial more than the searched parameters (`min_trials`): below, this shows how often the
leader they print is the wrong one.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweeper.analysis import _importance  # noqa: E402


def leader_hits(n_params: int, n_trials: int, draws: int) -> dict[str, int]:
    names = [f"p{index}" for index in range(n_params)]
    distributions = {name: optuna.distributions.FloatDistribution(0.0, 1.0) for name in names}
    hits = {_importance.FANOVA: 0, _importance.PED_ANOVA: 0}
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        trials = []
        for number in range(n_trials):
            trial = optuna.trial.create_trial(
                params={name: float(rng.uniform()) for name in names}, distributions=distributions, value=0.0
            )
            trial.number = number
            trials.append(trial)
        target = {trial.number: trial.params[names[0]] + 0.05 * rng.normal() for trial in trials}
        for evaluator in hits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (importance,) = _importance.importances_for(
                    trials, target, "y", False, names, evaluators=[evaluator], seed=draw
                )
            if importance.values and max(importance.values, key=importance.values.get) == names[0]:
                hits[evaluator] += 1
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=int, default=6)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 5, 7, 10, 20])
    parser.add_argument("--draws", type=int, default=30)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"# bench/importance_minimum.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/importance_minimum.py " + " ".join(sys.argv[1:]))
    print(f"# {args.params} parameters, the target set by one; {args.draws} draws per size; chance 1/{args.params}; "
          f"the analysis's minimum: {_importance.min_trials([None] * args.params)} trials")
    _importance.min_trials = lambda params: _importance.MIN_TRIALS  # every size computed, to see below the minimum
    print("trials  fanova  ped_anova  (draws whose leader is the parameter that sets the target)")
    for size in args.sizes:
        hits = leader_hits(args.params, size, args.draws)
        print(f"{size:6d}  {hits[_importance.FANOVA]:3d}/{args.draws}  {hits[_importance.PED_ANOVA]:6d}/{args.draws}")


if __name__ == "__main__":
    main()
