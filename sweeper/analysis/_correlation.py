"""Direction and strength of a parameter's effect: Spearman's rank correlation with a percentile bootstrap CI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
MIN_TRIALS = 4  # below this a rank correlation of a handful of points says nothing


def spearman_with_ci(
    x: Sequence[float], y: Sequence[float], n_bootstrap: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float | None, float | None, float | None]:
    """(rho, ci_low, ci_high); None where fewer than MIN_TRIALS points or either side is constant.

    A percentile bootstrap, trials resampled in pairs; every resample is ranked afresh (ties averaged). Resamples
    in which x or y came out constant have no correlation and are left out of the percentiles.
    """
    return spearman_table({"x": x}, {"y": y}, n_bootstrap, seed)[("x", "y")]


def spearman_table(
    columns: Mapping[str, Sequence[float]],
    targets: Mapping[str, Sequence[float]],
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[tuple[str, str], tuple[float | None, float | None, float | None]]:
    """`spearman_with_ci` of every (column, target) pair over the same trials (every array one value per trial,
    in the same order), from one set of resamples: each variable is ranked once per resample, not once per pair.
    Each pair gets the numbers `spearman_with_ci` gives it alone."""
    arrays = {name: np.asarray(values, dtype=float) for name, values in (*columns.items(), *targets.items())}
    n = len(next(iter(arrays.values())))
    if any(len(values) != n for values in arrays.values()):
        raise ValueError("spearman_table: every column and target needs one value per trial")
    pairs = [(c, t) for c in columns for t in targets]
    table: dict[tuple[str, str], tuple[float | None, float | None, float | None]] = dict.fromkeys(
        pairs, (None, None, None)
    )
    judged = [
        (c, t) for c, t in pairs if n >= MIN_TRIALS and np.ptp(arrays[c]) > 0 and np.ptp(arrays[t]) > 0
    ]
    if not judged:
        return table
    used = sorted({name for pair in judged for name in pair})
    index = {name: position for position, name in enumerate(used)}
    rng = np.random.default_rng(seed)
    resampled: dict[tuple[str, str], list[np.ndarray]] = {pair: [] for pair in judged}
    chunk = resamples_per_chunk(n)
    for start in range(0, n_bootstrap, chunk):
        picks = rng.integers(0, n, size=(min(chunk, n_bootstrap - start), n))
        counts = np.bincount((picks + n * np.arange(len(picks))[:, None]).ravel(), minlength=picks.size)
        counts = counts.reshape(picks.shape)
        # a resample of n has mean rank (n + 1) / 2; each variable's centred ranks (resample, variable, trial)
        centred = np.stack([_ranks_in(counts, arrays[name]) - (n + 1) / 2 for name in used], axis=1)
        # every variable's ranks weighted by the counts against every variable's ranks, per resample: one batched
        # matrix product (BLAS), where a dot product per pair and resample was half of this table's time
        products = (counts[:, None, :] * centred) @ centred.transpose(0, 2, 1)
        for c, t in judged:
            covariance = products[:, index[c], index[t]]
            spread = np.sqrt(products[:, index[c], index[c]] * products[:, index[t], index[t]])
            resampled[(c, t)].append(np.where(spread > 0, covariance / np.where(spread > 0, spread, 1.0), np.nan))
    from scipy import stats  # late: half a second to import, which a trials-only analysis (the export) never needs

    tail = (1 - CONFIDENCE) / 2 * 100
    for c, t in judged:
        low, high = np.nanpercentile(np.concatenate(resampled[(c, t)]), [tail, 100 - tail])
        table[(c, t)] = (float(stats.spearmanr(arrays[c], arrays[t]).statistic), float(low), float(high))
    return table


# Resamples computed at once: a few (chunk x trials) arrays per variable at a time. A resample is how many times it
# drew each trial, so a trial's rank in it (ties averaged) follows from the counts of the values below and equal to
# its own: linear in the trials per resample, where sorting each resample was n log n (and, at 3,000 trials, most
# of the analysis's time). About CHUNK_DRAWS draws at a time: larger chunks cost more in memory traffic than they
# save in Python (64 resamples of 10,000 trials at a time took 9.6 s of a table that takes 5.3 s in chunks of 12).
# The draws are one stream, so the table is the same whatever the chunk.
CHUNK_DRAWS = 120_000


def resamples_per_chunk(n: int) -> int:
    return max(8, min(64, CHUNK_DRAWS // max(n, 1)))


def _ranks_in(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each trial's average rank within each resample (rows of `counts`), over its tie group of equal values."""
    distinct, group = np.unique(values, return_inverse=True)
    order = np.argsort(group, kind="stable")
    if len(distinct) == len(values):  # no ties (a continuous parameter): each group is one trial, summed as itself
        per_group = counts[:, order].astype(float)
    else:
        starts = np.searchsorted(group[order], np.arange(len(distinct)))
        per_group = np.add.reduceat(counts[:, order], starts, axis=1).astype(float)
    # a group drawn k times takes the ranks (drawn below) + 1 .. (drawn below) + k, averaged
    group_rank = np.cumsum(per_group, axis=1) - (per_group - 1) / 2
    return group_rank[:, group]


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
