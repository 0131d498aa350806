"""Hyperparameter importances per target with Optuna's evaluators.

fANOVA splits the variance of the target over the parameters, so it is the same for a target and its negation.
PED-ANOVA asks which parameter values set the top-quantile trials apart and, given a `target`, always takes
*lower* as better: a maximised objective is negated before it sees it, or it would explain the worst trials.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from ._data import Importance

FANOVA, PED_ANOVA = "fanova", "ped_anova"
MIN_TRIALS = 3
# fANOVA's forest marginalises over every leaf: its cost grows faster than the trials (113 of 133 CPU s of an
# analysis at 1,000 trials). Variance shares settle long before that, so larger studies use a random sample.
MAX_FANOVA_TRIALS = 400


def min_trials(params: Sequence[str]) -> int:
    """One trial more than the searched parameters. With fewer, some parameter's values line up with the target by
    chance as well as the one that sets it: on a target set by one of 6 parameters, fANOVA ranked that one first in
    15 of 30 draws of 4 trials, 26 of 30 at 7 and 30 of 30 at 10; PED-ANOVA, which reads only the top trials, in 12,
    11 and 16 (bench/importance_minimum.py)."""
    return max(MIN_TRIALS, len(params) + 1)


def _evaluator(name: str, seed: int):
    # late: fANOVA's forest is scikit-learn's (half a second to import); a trials-only analysis never needs it
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    if name == FANOVA:
        return FanovaImportanceEvaluator(seed=seed)
    return PedAnovaImportanceEvaluator()


def importances_for(
    trials: Sequence[FrozenTrial],
    target_values: Mapping[int, float],
    target: str,
    maximize: bool,
    params: list[str],
    evaluators: Sequence[str] = (FANOVA, PED_ANOVA),
    seed: int = 0,
) -> list[Importance]:
    """One Importance per evaluator for `target` (trial number -> value), over trials that have a value for it.

    The trials are copied into an in-memory study so that trials without the target (e.g. no curves) are left out
    instead of failing the evaluators; their params and distributions are Optuna's own.
    """
    usable = [trial for trial in trials if trial.number in target_values and all(p in trial.params for p in params)]
    needed = min_trials(params)
    results = []
    for name in evaluators:
        evaluated = usable
        if name == FANOVA and len(usable) > MAX_FANOVA_TRIALS:
            picked = np.random.default_rng(seed).choice(len(usable), MAX_FANOVA_TRIALS, replace=False)
            evaluated = [usable[index] for index in sorted(picked)]
        negate = maximize and name == PED_ANOVA
        if len(usable) < needed or not params:
            error = f"needs {needed} completed trials (one more than the {len(params)} searched parameters), " \
                    f"has {len(usable)}"
            results.append(Importance(target, name, negate, {}, len(usable), error))
            continue
        study = optuna.create_study()  # in memory; only a container the evaluators can read
        study.add_trials(
            [
                optuna.trial.create_trial(params={p: t.params[p] for p in params},
                                          distributions={p: t.distributions[p] for p in params},
                                          value=target_values[t.number])
                for t in evaluated
            ]
        )
        sign = -1.0 if negate else 1.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PED-ANOVA warns on every call that lower target = better
                values = optuna.importance.get_param_importances(
                    study, evaluator=_evaluator(name, seed), params=params, target=lambda t: sign * t.value
                )
        except (RuntimeError, ValueError) as error:
            results.append(Importance(target, name, negate, {}, len(usable), f"{type(error).__name__}: {error}"))
            continue
        results.append(Importance(target, name, negate, {k: float(v) for k, v in values.items()}, len(evaluated)))
    return results
