"""Hypervolume history of a multi-objective study, with Optuna's own hypervolume computation (a private module of
Optuna's, reached through storage/_optuna_internals.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ..storage import compute_hypervolume
from ._data import HypervolumeHistory

REFERENCE_MARGIN = 0.1  # the reference point lies this share of each objective's range beyond its worst value


def reference_point(points: np.ndarray) -> np.ndarray:
    """In minimisation space: the worst value of each objective, pushed out by REFERENCE_MARGIN of its range so
    that the worst trials still add volume."""
    worst, best = points.max(axis=0), points.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
    return worst + REFERENCE_MARGIN * span


def hypervolume_history(
    trial_numbers: Sequence[int], values: Sequence[Sequence[float]], directions: Sequence[str]
) -> HypervolumeHistory | None:
    """Hypervolume of the Pareto front of completed trials up to each one, in trial-number order."""
    if len(directions) < 2 or not trial_numbers:
        return None
    signs = np.array([1.0 if direction == "minimize" else -1.0 for direction in directions])
    order = np.argsort(trial_numbers)
    points = np.asarray(values, dtype=float)[order] * signs  # Optuna's computation minimises every objective
    reference = reference_point(points)
    history = _running_hypervolume(points, reference)
    return HypervolumeHistory(
        reference_point=[float(v) for v in reference * signs],
        trial_numbers=[int(trial_numbers[i]) for i in order],
        values=history,
    )


def _running_hypervolume(points: np.ndarray, reference: np.ndarray) -> list[float]:
    """The hypervolume after each point (minimisation), kept incrementally: a point its front dominates leaves it
    unchanged, and only the front (not every prefix of the study) is measured. Linear in the trials times the front
    size, where recomputing each prefix grew with the square of the study."""
    front = np.empty((0, points.shape[1]))
    volume, history = 0.0, []
    for point in points:
        if not (len(front) and np.any(np.all(front <= point, axis=1))):  # not weakly dominated: the front changes
            front = np.vstack([front[~np.all(point <= front, axis=1)], point])
            volume = float(compute_hypervolume(front, reference))
        history.append(volume)
    return history
