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

    Trials are resampled in pairs with replacement; every resample is ranked afresh (ties averaged) and correlated,
    all at once as arrays. Resamples in which x or y came out constant have no correlation and are dropped.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < MIN_TRIALS or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None, None
    rho = float(stats.spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), size=(n_bootstrap, len(x)))
    rank_x = stats.rankdata(x[picks], axis=1)
    rank_y = stats.rankdata(y[picks], axis=1)
    rank_x -= rank_x.mean(axis=1, keepdims=True)
    rank_y -= rank_y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rank_x**2).sum(axis=1) * (rank_y**2).sum(axis=1))
    valid = denominator > 0
    resampled = (rank_x * rank_y).sum(axis=1)[valid] / denominator[valid]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return rho, float(low), float(high)


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
