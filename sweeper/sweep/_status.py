"""`sweeper status`: what the storage holds, one row per trial, Pareto-front trials marked. Reads storage only."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from ..storage import (
    RETRIED_FROM, TrialRecord, call_with_retries, pareto_front, read_trials, rerun_map, storage_url,
    stored_failure_reason,
)

# The TrialRecord fields the table shows: all a large study's trials are read with these attributes only.
SHOWN_FIELDS = ("failure_reason", "pruned_reason")


def status_rows(study: optuna.Study) -> list[dict[str, Any]]:
    trials = call_with_retries(storage_url(study), "reading the trials",
                               lambda: read_trials(study, user_attrs=SHOWN_FIELDS, system_attrs=(RETRIED_FROM,)))
    pareto = {t.number for t in pareto_front(study, trials)}
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
