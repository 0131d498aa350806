"""Pairwise interactions: does the effect of one hyperparameter depend on another (learning rate x effective batch
size, beta x learning rate)?

From the Gaussian-process surrogate that the effect shapes fit (`_shapes.py`): the two-parameter partial dependence
PD_ij on a grid, and the one-parameter ones PD_i and PD_j on the same grid, each the surrogate's posterior mean
averaged over the observed values of the other parameters (as `sklearn.inspection.partial_dependence` defines it).
Centred, the part of PD_ij that PD_i + PD_j does not explain is the interaction:

- `h2`, Friedman's H-squared (Friedman and Popescu 2008): its share of the variance of PD_ij (0 additive, 1 pure
  interaction);
- `size`, its root mean square in the target's own units, compared with the same tolerance the shapes use (the
  seed-to-seed SD from replicates, or a share of the target's spread): an interaction is called only above it.

fANOVA's pair terms would serve as well, but Optuna keeps them private; the surrogate is already fitted here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PAIR_GRID_POINTS = 10
MAX_AVERAGED_ROWS = 40  # rows a partial dependence averages over (the shapes' posterior covariance grows with their square)


@dataclass
class PairInteraction:
    first: str
    second: str
    target: str
    h2: float  # share of the pair's joint partial dependence that is not additive
    size: float  # root mean square of the non-additive part, in the target's units
    tolerance: float
    called: bool  # size above the tolerance
    grid_first: list[float]  # parameter units
    grid_second: list[float]
    surface: list[list[float]]  # two-parameter partial dependence, [first index][second index], target units
    n_trials: int


def averaged_rows(features: np.ndarray, seed: int) -> np.ndarray:
    """The rows a partial dependence averages over: all of them, or MAX_AVERAGED_ROWS drawn with `seed`."""
    if features.shape[0] <= MAX_AVERAGED_ROWS:
        return features
    return features[np.random.default_rng(seed).choice(features.shape[0], MAX_AVERAGED_ROWS, replace=False)]


def _partial_dependence(model, rows: np.ndarray, columns: Sequence[int], grid: Sequence[np.ndarray]) -> np.ndarray:
    """The surrogate's mean prediction averaged over `rows`, at every point of the grid over `columns`."""
    mesh = np.meshgrid(*grid, indexing="ij")
    points = np.repeat(rows[None, :, :], mesh[0].size, axis=0)  # grid points x rows x dims
    for column, values in zip(columns, mesh):
        points[:, :, column] = values.reshape(-1, 1)
    mean = model.predict(points.reshape(-1, rows.shape[1]))
    return mean.reshape(mesh[0].size, rows.shape[0]).mean(axis=1).reshape(mesh[0].shape)


def pair_interactions(
    model,
    scaled: np.ndarray,
    names: Sequence[str],
    unscale: Callable[[float, int], float],
    target: str,
    tolerance: float,
    seed: int = 0,
) -> list[PairInteraction]:
    """One PairInteraction per pair of varied columns of `scaled` (each on [0, 1]), strongest first."""
    rows = averaged_rows(scaled, seed)
    grid = np.linspace(0.0, 1.0, PAIR_GRID_POINTS)
    varied = [c for c in range(scaled.shape[1]) if np.ptp(scaled[:, c]) > 0]
    single = {c: _partial_dependence(model, rows, [c], [grid]) for c in varied}
    found = []
    for position, first in enumerate(varied):
        for second in varied[position + 1:]:
            joint = _partial_dependence(model, rows, [first, second], [grid, grid])
            centred = joint - joint.mean()
            additive = (single[first] - single[first].mean())[:, None] + (single[second] - single[second].mean())[None, :]
            residual = centred - additive
            total = float((centred**2).sum())
            size = float(np.sqrt((residual**2).mean()))
            found.append(
                PairInteraction(
                    first=names[first], second=names[second], target=target,
                    h2=round(min(1.0, float((residual**2).sum()) / total), 4) if total > 0 else 0.0,  # grid rounding
                    size=size, tolerance=tolerance, called=size > tolerance,
                    grid_first=[unscale(float(g), first) for g in grid],
                    grid_second=[unscale(float(g), second) for g in grid],
                    surface=[[float(v) for v in line] for line in joint], n_trials=scaled.shape[0],
                )
            )
    return sorted(found, key=lambda pair: (pair.called, pair.size), reverse=True)


def describe_interaction(pair: PairInteraction) -> str:
    verdict = "interacts" if pair.called else "no interaction above noise"
    return (f"{pair.first} x {pair.second} -> {pair.target}: {verdict} (H² {pair.h2:.2f}, size {pair.size:.3g} "
            f"against noise {pair.tolerance:.3g})")
