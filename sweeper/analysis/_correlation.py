"""Direction and strength of a parameter's effect: Spearman's rank correlation with a percentile bootstrap CI."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
MIN_TRIALS = 4  # below this a rank correlation of a handful of points says nothing


def spearman_with_ci(
    x: Sequence[float], y: Sequence[float], n_bootstrap: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float | None, float | None, float | None]:
    """(rho, ci_low, ci_high); None where fewer than MIN_TRIALS points or either side is constant.

    scipy's percentile bootstrap, trials resampled in pairs; every resample is ranked afresh (ties averaged).
    Resamples in which x or y came out constant have no correlation and are left out of the percentiles.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < MIN_TRIALS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None, None
    rho = float(stats.spearmanr(x, y).statistic)
    resampled = stats.bootstrap(
        (x, y), _spearman_along, paired=True, vectorized=True, n_resamples=n_bootstrap, method="percentile",
        random_state=np.random.default_rng(seed),
    ).bootstrap_distribution
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(resampled, [tail, 100 - tail])
    return rho, float(low), float(high)


def _spearman_along(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho of each resample (the last axis holds the trials); NaN where a resample is constant."""
    rank_x, rank_y = stats.rankdata(x, axis=axis), stats.rankdata(y, axis=axis)
    rank_x -= rank_x.mean(axis=axis, keepdims=True)
    rank_y -= rank_y.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((rank_x**2).sum(axis=axis) * (rank_y**2).sum(axis=axis))
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (rank_x * rank_y).sum(axis=axis) / safe, np.nan)


def direction_of(ci_low: float | None, ci_high: float | None) -> str:
    if ci_low is None or ci_high is None:
        return "unclear"
    if ci_low > 0:
        return "increases"
    if ci_high < 0:
        return "decreases"
    return "unclear"


def strength_of(rho: float | None) -> str:
    if rho is None:
        return "-"
    size = abs(rho)
    return "weak" if size < 0.3 else "moderate" if size < 0.6 else "strong"


def high_minus_low(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Mean of y over the top third of x minus the mean over the bottom third: the effect in the target's units."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    low_cut, high_cut = np.quantile(x, [1 / 3, 2 / 3])
    low, high = y[x <= low_cut], y[x >= high_cut]
    if not len(low) or not len(high):
        return None
    return float(high.mean() - low.mean())
