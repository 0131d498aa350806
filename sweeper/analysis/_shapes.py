"""Effect shapes: how each hyperparameter moves a target, with uncertainty, including U-shaped effects.

A rank correlation over the whole range cannot see a U: the learning rate that barely learns when too low and
diverges when too high gets rho near 0. Here a Gaussian-process surrogate (scikit-learn) is fitted to the completed
trials; the partial dependence of a target on one parameter (the surrogate's prediction averaged over the other
parameters' observed values, as `sklearn.inspection.partial_dependence` defines it) is drawn from the GP posterior
many times. Each drawn curve is judged, and the shape is the one most of them agree on:

- **optimum inside the range**: the best point of the curve (the minimum of a minimised target, the maximum of a
  maximised one) lies inside the range, better than both ends by more than the tolerance, in at least
  `AGREEMENT` of the draws; its location is the median over those draws, with a 90% interval;
- **increasing / decreasing**: the curve's high end differs from its low end by more than the tolerance, in that
  direction, in at least `AGREEMENT` of the draws;
- **flat within noise**: the curve's whole range stays below the tolerance in most draws;
- **unclear**: none of these.

The tolerance is the larger of the replicates' seed-to-seed SD of the target (when the study has replicates) and
`RELATIVE_TOLERANCE` of the spread of the target over the trials, so a shape is only called where it exceeds noise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._interactions import PairInteraction, averaged_rows, pair_interactions

INCREASING, DECREASING, OPTIMUM_INSIDE, FLAT, UNCLEAR = (
    "increasing", "decreasing", "optimum inside the range", "flat within noise", "unclear"
)
GRID_POINTS = 25
POSTERIOR_DRAWS = 300
AGREEMENT = 0.8  # share of posterior draws that must agree on a shape
RELATIVE_TOLERANCE = 0.05  # of the target's spread over the trials, the least change called an effect
MIN_TRIALS = 8
MAX_SURROGATE_TRIALS = 300  # a GP fit grows with the cube of its points: larger studies are subsampled


@dataclass
class EffectShape:
    """The partial dependence of one target on one parameter, its band and its shape."""

    parameter: str
    target: str
    maximize: bool  # the target is better high (then the optimum is a maximum)
    shape: str
    agreement: float  # share of posterior draws that show this shape
    grid: list[float]  # parameter values, in the parameter's own units
    mean: list[float]  # posterior mean of the partial dependence at each grid value
    low: list[float]  # 5th percentile of the draws
    high: list[float]  # 95th percentile
    change: float  # mean curve: value at the high end minus value at the low end
    optimum: float | None  # where the best value lies, for OPTIMUM_INSIDE
    optimum_low: float | None  # 90% interval of that location
    optimum_high: float | None
    tolerance: float  # the least change called an effect
    n_trials: int
    log_scale: bool


@dataclass(frozen=True)
class ParameterAxis:
    name: str
    log_scale: bool


def _transform(values: np.ndarray, log_scale: bool) -> np.ndarray:
    return np.log10(values) if log_scale else values


def _untransform(values: np.ndarray, log_scale: bool) -> np.ndarray:
    return 10.0 ** values if log_scale else values


def fit_surrogate(features: np.ndarray, target: np.ndarray, seed: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor

    from ._ard_kernel import surrogate_kernel

    model = GaussianProcessRegressor(
        surrogate_kernel(features.shape[1]), normalize_y=True, n_restarts_optimizer=3, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, target)
    return model


def surrogate_rows(count: int, seed: int) -> np.ndarray:
    """Which of `count` trials a surrogate is fitted on, in their order: all, or MAX_SURROGATE_TRIALS drawn with
    `seed`. The effect shapes and the advice draw the same ones, so they can share a target's surrogate."""
    if count <= MAX_SURROGATE_TRIALS:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, MAX_SURROGATE_TRIALS, replace=False))


class SurrogateFits:
    """The surrogates of one analysis, each fitted once. The effect shapes and the advice fit the same target on
    the same trials, and a fit (its hyperparameters optimised from several starts) is most of their time. Keyed by
    the exact inputs, so a shared surrogate is the very one each would have fitted itself."""

    def __init__(self) -> None:
        self._fitted: dict[tuple, object] = {}

    def fit(self, features: np.ndarray, target: np.ndarray, seed: int):
        key = (features.shape, features.tobytes(), target.tobytes(), seed)
        if key not in self._fitted:
            self._fitted[key] = fit_surrogate(features, target, seed)
        return self._fitted[key]


@dataclass(frozen=True)
class ScaledFeatures:
    """The features a surrogate sees: `values`, each parameter on [0, 1] (log-scale ones in log10 first); per column
    its transformed minimum `low`, range `span` (1 for a constant column) and whether it `varies`."""

    values: np.ndarray
    low: np.ndarray
    span: np.ndarray
    varies: np.ndarray
    axes: tuple[ParameterAxis, ...]

    def unscale(self, value: float, column: int) -> float:
        """A scaled value of column `column` back in the parameter's own units."""
        return float(_untransform(self.low[column] + value * self.span[column], self.axes[column].log_scale))


def scaled_features(raw: np.ndarray, axes: Sequence[ParameterAxis]) -> ScaledFeatures:
    """`raw[:, c]` holds parameter `axes[c]`'s values. The effect shapes and the advice scale by this one rule, so
    a target's surrogate fitted for one serves the other (SurrogateFits keys on the scaled values)."""
    transformed = np.column_stack([_transform(raw[:, index], axis.log_scale) for index, axis in enumerate(axes)])
    low, high = transformed.min(axis=0), transformed.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return ScaledFeatures((transformed - low) / span, low, span, high > low, tuple(axes))


def _partial_dependence_draws(model, features: np.ndarray, column: int, grid: np.ndarray, draws: int, seed: int):
    """Posterior draws of the partial dependence on `column` at `grid` (draws x grid), and its posterior mean."""
    features = averaged_rows(features, seed)
    rows = features.shape[0]
    stacked = np.repeat(features[None, :, :], len(grid), axis=0)  # grid x rows x dims
    stacked[:, :, column] = grid[:, None]
    points = stacked.reshape(-1, features.shape[1])
    mean, cov = model.predict(points, return_cov=True)
    # the partial dependence is the average over the data rows: a linear map of the joint posterior
    averaging = np.kron(np.eye(len(grid)), np.full((1, rows), 1.0 / rows))
    pd_mean = averaging @ mean
    pd_cov = averaging @ cov @ averaging.T
    pd_cov = (pd_cov + pd_cov.T) / 2 + np.eye(len(grid)) * 1e-12
    generator = np.random.default_rng(seed)
    return generator.multivariate_normal(pd_mean, pd_cov, size=draws, method="eigh"), pd_mean


def _judge(draws: np.ndarray, maximize: bool, tolerance: float) -> tuple[str, float, np.ndarray]:
    """The shape most draws agree on, the share that agree, and the mask of draws showing an interior optimum."""
    better = -draws if maximize else draws  # lower is better from here on
    ends = np.minimum(better[:, 0], better[:, -1])
    best_index = better.argmin(axis=1)
    interior = (best_index > 0) & (best_index < draws.shape[1] - 1) & (ends - better.min(axis=1) > tolerance)
    change = draws[:, -1] - draws[:, 0]
    shares = {
        OPTIMUM_INSIDE: interior.mean(),
        INCREASING: (change > tolerance).mean(),
        DECREASING: (change < -tolerance).mean(),
    }
    shape, share = max(shares.items(), key=lambda item: item[1])
    if share >= AGREEMENT:
        return shape, float(share), interior
    flat = ((draws.max(axis=1) - draws.min(axis=1)) <= tolerance).mean()
    if flat >= 0.5:
        return FLAT, float(flat), interior
    return UNCLEAR, float(share), interior


def effect_shapes(
    axes: Sequence[ParameterAxis],
    values: Mapping[str, Sequence[float]],
    targets: Mapping[str, Sequence[float]],
    maximize: Mapping[str, bool],
    noise_sd: Mapping[str, float | None] | None = None,
    seed: int = 0,
) -> list[EffectShape]:
    """One EffectShape per (parameter, target). `values[name]` and `targets[target]` are aligned per trial and
    finite; one surrogate per target uses every parameter in `axes`."""
    return shapes_and_interactions(axes, values, targets, maximize, noise_sd, seed, interactions=False)[0]


def shapes_and_interactions(
    axes: Sequence[ParameterAxis],
    values: Mapping[str, Sequence[float]],
    targets: Mapping[str, Sequence[float]],
    maximize: Mapping[str, bool],
    noise_sd: Mapping[str, float | None] | None = None,
    seed: int = 0,
    interactions: bool = True,
    fits: SurrogateFits | None = None,
) -> tuple[list[EffectShape], list[PairInteraction]]:
    """`effect_shapes`, and the pairwise interactions (`_interactions.py`) read off the same surrogate per target
    (none when `interactions` is False). `fits`: the analysis's surrogates, shared with its advice."""
    noise_sd = noise_sd or {}
    fits = fits or SurrogateFits()
    features = scaled_features(np.column_stack([np.asarray(values[axis.name], dtype=float) for axis in axes]), axes)
    scaled, low, span = features.values, features.low, features.span  # the kernel sees every parameter on [0, 1]
    shapes, pairs = [], []
    for target, ys in targets.items():
        target_values = np.asarray(ys, dtype=float)
        if len(target_values) < MIN_TRIALS or np.ptp(target_values) == 0:
            continue
        fitted = surrogate_rows(len(target_values), seed)
        model = fits.fit(scaled[fitted], target_values[fitted], seed)
        tolerance = max(noise_sd.get(target) or 0.0, RELATIVE_TOLERANCE * float(np.ptp(target_values)))
        if interactions:
            pairs += pair_interactions(
                model, scaled, [axis.name for axis in axes], features.unscale, target, tolerance, seed
            )
        for index, axis in enumerate(axes):
            if not features.varies[index]:
                continue
            grid_scaled = np.linspace(0.0, 1.0, GRID_POINTS)
            draws, pd_mean = _partial_dependence_draws(model, scaled, index, grid_scaled, POSTERIOR_DRAWS, seed)
            shape, agreement, interior = _judge(draws, maximize[target], tolerance)
            grid = _untransform(low[index] + grid_scaled * span[index], axis.log_scale)
            optimum = optimum_low = optimum_high = None
            if shape == OPTIMUM_INSIDE:
                best = (-draws if maximize[target] else draws).argmin(axis=1)[interior]
                positions = low[index] + grid_scaled[best] * span[index]
                optimum, optimum_low, optimum_high = (
                    float(_untransform(np.quantile(positions, q), axis.log_scale)) for q in (0.5, 0.05, 0.95)
                )
            shapes.append(
                EffectShape(
                    parameter=axis.name, target=target, maximize=maximize[target], shape=shape,
                    agreement=round(agreement, 3), grid=[float(g) for g in grid], mean=[float(v) for v in pd_mean],
                    low=[float(v) for v in np.quantile(draws, 0.05, axis=0)],
                    high=[float(v) for v in np.quantile(draws, 0.95, axis=0)],
                    change=float(pd_mean[-1] - pd_mean[0]), optimum=optimum, optimum_low=optimum_low,
                    optimum_high=optimum_high, tolerance=tolerance, n_trials=len(target_values),
                    log_scale=axis.log_scale,
                )
            )
    return shapes, pairs


def describe_shape(shape: EffectShape) -> str:
    """One line a person reads: `learning_rate -> generalization_gap: optimum inside the range at 4.1e-03
    [2.2e-03, 7.5e-03] (88% of draws)`."""
    if shape.shape == OPTIMUM_INSIDE:
        kind = "maximum" if shape.maximize else "minimum"
        where = f" ({kind} at {shape.optimum:.3g} [{shape.optimum_low:.3g}, {shape.optimum_high:.3g}])"
    elif shape.shape in (INCREASING, DECREASING):
        where = f" (by {shape.change:+.3g} over the range)"
    else:
        where = ""
    return f"{shape.parameter} -> {shape.target}: {shape.shape}{where}, {shape.agreement:.0%} of draws"
