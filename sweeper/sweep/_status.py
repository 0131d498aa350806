"""`sweeper status`: what the storage holds, one row per trial, Pareto-front trials marked. Reads storage only."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from ._progress import FAILURE_REASON


def status_rows(study: optuna.Study) -> list[dict[str, Any]]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) > 1:
        pareto = {t.number for t in study.best_trials} if complete else set()
    else:
        pareto = {study.best_trial.number} if complete else set()
    return [
        {
            "number": trial.number,
            "state": trial.state.name,
            "params": dict(trial.params),
            "values": list(trial.values) if trial.values else None,
            "failure_reason": trial.user_attrs.get(FAILURE_REASON),
            "pareto": trial.number in pareto,
        }
        for trial in study.get_trials(deepcopy=False)
    ]
