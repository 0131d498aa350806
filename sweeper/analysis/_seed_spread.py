"""The noise floor: per-metric spread of a configuration re-run with other seeds (`sweeper replicate`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._data import EVAL_LOSS, GAP, TRAIN_LOSS, ReplicateGroup, SeedSpread, TrialRow


def metric_values(trial: TrialRow, objective_names: Sequence[str]) -> dict[str, float]:
    """The metrics whose seed spread is reported: each objective, the gap and both final losses."""
    values = dict(trial.values or {})
    if trial.fit is not None:
        fit = trial.fit
        values.update({GAP: fit.generalization_gap, TRAIN_LOSS: fit.train_loss, EVAL_LOSS: fit.eval_loss})
    names = [*objective_names, GAP, TRAIN_LOSS, EVAL_LOSS]
    return {name: float(values[name]) for name in names if values.get(name) is not None and math.isfinite(values[name])}


def seed_spread(
    replicates_study: str,
    sources: Sequence[TrialRow],
    replicates: Sequence[tuple[int, TrialRow]],
    objective_names: Sequence[str],
) -> SeedSpread:
    """`replicates` = (source trial number, completed replicate trial). Each group holds the source and its
    replicates; a metric's pooled SD is sqrt(sum((n_i - 1) s_i^2) / sum(n_i - 1)) over groups with n_i >= 2."""
    metrics = [*objective_names, GAP, TRAIN_LOSS, EVAL_LOSS]
    by_source = {trial.number: trial for trial in sources}
    members: dict[int, list[TrialRow]] = {}
    for source_number, replicate in replicates:
        if source_number in by_source:
            members.setdefault(source_number, []).append(replicate)

    groups, squares, dofs = [], dict.fromkeys(metrics, 0.0), dict.fromkeys(metrics, 0)
    for source_number in sorted(members):
        runs = [by_source[source_number], *members[source_number]]
        values = [metric_values(run, objective_names) for run in runs]
        mean, sd = {}, {}
        for metric in metrics:
            column = [v[metric] for v in values if metric in v]
            if len(column) >= 2:
                mean[metric] = float(np.mean(column))
                sd[metric] = float(np.std(column, ddof=1))
                squares[metric] += (len(column) - 1) * sd[metric] ** 2
                dofs[metric] += len(column) - 1
        groups.append(
            ReplicateGroup(
                source_trial=source_number,
                seeds=[run.seed for run in runs],
                trial_numbers=[run.number for run in members[source_number]],
                mean=mean,
                sd=sd,
            )
        )
    pooled = {metric: (math.sqrt(squares[metric] / dofs[metric]) if dofs[metric] else None) for metric in metrics}
    return SeedSpread(replicates_study, groups, pooled, sum(len(m) for m in members.values()))
