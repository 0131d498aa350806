"""`sweeper status`: what the storage holds, one row per trial, Pareto-front trials marked. Reads storage only."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from ..storage import TrialRecord, rerun_map, stored_failure_reason


def status_rows(study: optuna.Study) -> list[dict[str, Any]]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) > 1:
        pareto = {t.number for t in study.best_trials} if complete else set()
    else:
        pareto = {study.best_trial.number} if complete else set()
    trials = study.get_trials(deepcopy=False)
    reruns = rerun_map(trials)
    return [
        {
            "number": trial.number,
            "state": trial.state.name,
            "params": dict(trial.params),
            "values": list(trial.values) if trial.values else None,
            "failure_reason": stored_failure_reason(trial, reruns),
            "pruned_reason": TrialRecord.of(trial).pruned_reason if trial.state == TrialState.PRUNED else None,
            "pareto": trial.number in pareto,
        }
        for trial in trials
    ]
