"""The pruners' rules, as pure functions over objective vectors and stored curve rows (no I/O).

A rung is a fraction of a trial's own schedule or an absolute optimizer step (`PrunerSpec.rungs`). A trial's value
at a rung is its objective vector at the first evaluation at or after the rung. Lower-is-better and
higher-is-better objectives are compared in their own direction; a missing or non-finite value counts as the worst
possible.
- dominated: a trial stops at a rung when, among the peers that reached it, there are at least `min_peers`, and at
  least max(1, ceil(dominated_fraction x peers)) of them dominate it.
- multi_metric: OptunaHub's multi_metric_pruner decides (sweeper/_vendor); only its record is here.
- asha: asynchronous successive halving with promotion by Pareto order (MO-ASHA, Schmucker et al. 2021): at a rung,
  the trial and the peers that reached it are ordered by non-domination rank, then, within a rank, by hypervolume
  contribution; the trial goes on when it is among the first max(1, n // reduction_factor) of the n.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._vendor.multi_metric_pruner._hypervolume._nondomination import _fast_non_domination_rank
from .._vendor.multi_metric_pruner._hypervolume._ordering import _argsort_by_hv_contribution
from ..metrics import EVAL, TRAIN

if TYPE_CHECKING:
    from ..storage import StoredPoint

Vector = Sequence[float | None]
# eval metrics (with the `eval_` prefix), train metrics -> objective vector; raises KeyError when a metric is missing
ObjectiveFunction = Callable[[Mapping[str, float], Mapping[str, float]], list[float]]


def rung_threshold(rung: float | int, planned_steps: int) -> int:
    """The optimizer step a rung stands for in a trial planned to run `planned_steps` steps."""
    if isinstance(rung, float):
        return max(1, math.ceil(rung * planned_steps))
    return rung


def rung_step(eval_steps: Iterable[int], threshold: int) -> int | None:
    """The step of the first evaluation at or after `threshold`, or None when none is stored yet."""
    return min((step for step in eval_steps if step >= threshold), default=None)


def threshold_at_rung(rung: float | int, planned_steps: int | None) -> int | None:
    """The step `rung` stands for in a trial planned to run `planned_steps` steps, or None where a fraction rung
    cannot be placed (no planned steps stored)."""
    if planned_steps is None and isinstance(rung, float):
        return None
    return rung_threshold(rung, planned_steps or 0)


def step_at_rung(eval_steps: Iterable[int], rung: float | int, planned_steps: int | None) -> int | None:
    """The step of a trial's evaluation at `rung`, or None where it has none yet or cannot place a fraction rung
    (no planned steps stored)."""
    threshold = threshold_at_rung(rung, planned_steps)
    return None if threshold is None else rung_step(eval_steps, threshold)


def _as_minimized(vector: Vector, directions: Sequence[str]) -> list[float]:
    values = []
    for value, direction in zip(vector, directions, strict=True):
        worst = value is None or not math.isfinite(value)
        number = math.inf if worst else (value if direction == "minimize" else -value)
        values.append(number)
    return values


def dominates(a: Vector, b: Vector, directions: Sequence[str]) -> bool:
    """True when `a` is at least as good as `b` in every objective and better in at least one."""
    first, second = _as_minimized(a, directions), _as_minimized(b, directions)
    return all(x <= y for x, y in zip(first, second)) and any(x < y for x, y in zip(first, second))


@dataclass(frozen=True)
class _AtRung:
    """What every pruner's decision says: where, and whether the trial stops there."""

    rung: float | int
    step: int  # the evaluation the rung was checked at
    prune: bool

    def _verdict(self) -> str:
        rung = f"{self.rung:g} of the schedule" if isinstance(self.rung, float) else f"step {self.rung}"
        return f"{'pruned' if self.prune else 'kept'} at rung {rung} (evaluation at step {self.step})"


@dataclass(frozen=True)
class RungDecision(_AtRung):
    peers: int
    dominated_by: int
    needed: int  # dominating peers that would stop the trial (0: too few peers yet)

    @property
    def reason(self) -> str:
        return (
            f"{self._verdict()}: dominated by {self.dominated_by} of {self.peers} trials that reached this rung "
            f"(stops at {self.needed or '-'})"
        )


def decide(
    own: Vector,
    peers: Sequence[Vector],
    directions: Sequence[str],
    *,
    rung: float | int,
    step: int,
    min_peers: int,
    dominated_fraction: float,
) -> RungDecision:
    """Whether a trial whose objective vector at `rung` is `own` stops, given its peers' vectors at that rung."""
    dominated_by = sum(dominates(peer, own, directions) for peer in peers)
    needed = max(1, math.ceil(dominated_fraction * len(peers) - 1e-9)) if len(peers) >= min_peers else 0
    prune = bool(needed) and dominated_by >= needed
    return RungDecision(rung=rung, step=step, prune=prune, peers=len(peers), dominated_by=dominated_by, needed=needed)


def pareto_order(vectors: Sequence[Vector], directions: Sequence[str]) -> list[int]:
    """Indices of `vectors`, best first: by non-domination rank (the Pareto front first), then within a rank by
    hypervolume contribution, largest first (the ordering OptunaHub's multi_metric_pruner breaks ties with). Vectors
    with a missing or non-finite value come last in their rank, in their given order."""
    if not vectors:
        return []
    minimized = np.array([_as_minimized(vector, directions) for vector in vectors], dtype=float)
    finite_values = np.isfinite(minimized)
    finite = finite_values.all(axis=1)
    # the rank routine needs finite numbers: a non-finite value becomes one worse than every finite value of its
    # objective (in any vector), as `dominates` counts it
    ceiling = np.where(finite_values, minimized, -np.inf).max(axis=0)
    worse = np.where(np.isfinite(ceiling), np.abs(ceiling) * 2 + 1, 0.0)
    ranks = _fast_non_domination_rank(np.where(finite_values, minimized, worse))
    order: list[int] = []
    for rank in np.unique(ranks):
        members = np.flatnonzero((ranks == rank) & finite)
        if len(members) > 1:
            rows = minimized[members]
            worst_row = rows.max(axis=0)
            reference = worst_row + np.maximum(0.1 * np.abs(worst_row), 1e-12)
            members = members[_argsort_by_hv_contribution(rows, reference)]
        order.extend(int(index) for index in members)
        order.extend(int(index) for index in np.flatnonzero((ranks == rank) & ~finite))
    return order


@dataclass(frozen=True)
class PromotionDecision(_AtRung):
    """Successive halving at one rung: the trial's place (0 = best) among the `peers` + 1 trials there."""

    peers: int
    place: int
    kept: int  # how many of the trials at this rung go on

    @property
    def reason(self) -> str:
        return (
            f"{self._verdict()}: Pareto place {self.place + 1} of {self.peers + 1} trials that reached this rung "
            f"(the first {self.kept} go on)"
        )


def decide_promotion(
    own: Vector, peers: Sequence[Vector], directions: Sequence[str], *, rung: float | int, step: int,
    reduction_factor: int,
) -> PromotionDecision:
    """Asynchronous successive halving (Li et al. 2020) in its stopping form, as Optuna's SuccessiveHalvingPruner:
    a trial goes on past a rung when it is among the first max(1, n // reduction_factor) of the n trials that
    reached it, itself included, in Pareto order. The first trials at a rung are kept only while they lead it."""
    order = pareto_order([*peers, own], directions)
    place = order.index(len(peers))
    kept = max(1, (len(peers) + 1) // reduction_factor)
    return PromotionDecision(rung=rung, step=step, prune=place >= kept, peers=len(peers), place=place, kept=kept)


@dataclass(frozen=True)
class MultiMetricDecision(_AtRung):
    """OptunaHub's multi_metric_pruner at one rung; its reasons stay inside it, so the record says what it saw."""

    finished: int  # finished trials that had reported at a rung (its MedianPruner's start-up count)
    min_peers: int

    @property
    def reason(self) -> str:
        verdict = f"{self._verdict()} by multi_metric_pruner"
        if self.prune:
            return f"{verdict}: best Pareto rank so far worse than the median of the finished trials at this rung"
        if self.finished < self.min_peers:
            return f"{verdict}: {self.finished} finished trials, it prunes from {self.min_peers}"
        return f"{verdict}: best Pareto rank so far no worse than the median of the finished trials at this rung"


@dataclass(frozen=True)
class _TrialCurve:
    eval_by_step: dict[int, dict[str, float | None]]
    train_points: list[tuple[int, str, float | None]]  # (step, metric, value), ordered by step

    def eval_metrics(self, step: int) -> dict[str, float | None]:
        return {f"eval_{metric}": value for metric, value in self.eval_by_step[step].items()}

    def train_metrics(self, step: int) -> dict[str, float | None]:
        """The latest logged value of each training metric at or before `step`."""
        latest: dict[str, float | None] = {}
        for point_step, metric, value in self.train_points:
            if point_step <= step:
                latest[metric] = value
        return latest


def curves_by_trial(points: Iterable[StoredPoint]) -> dict[int, _TrialCurve]:
    """Group `CurveStore.points` by trial."""
    evals: dict[int, dict[int, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    trains: dict[int, list[tuple[int, str, float | None]]] = defaultdict(list)
    for number, split, metric, step, value in points:
        if split == EVAL:
            evals[number][step][metric] = value
        elif split == TRAIN:
            trains[number].append((step, metric, value))
    return {
        number: _TrialCurve(dict(evals.get(number, {})), sorted(trains.get(number, []), key=lambda point: point[0]))
        for number in set(evals) | set(trains)
    }


def vector_at_rung(
    curve: _TrialCurve, rung: float | int, planned_steps: int | None, objective: ObjectiveFunction
) -> tuple[int, list[float | None]] | None:
    """(step, objective vector) of a trial at a rung, or None where it has not reached the rung or lacks a metric."""
    step = step_at_rung(curve.eval_by_step, rung, planned_steps)
    if step is None:
        return None
    eval_metrics = curve.eval_metrics(step)
    if any(value is None for value in eval_metrics.values()):  # a non-finite value was stored as NULL
        eval_metrics = {key: (math.nan if value is None else value) for key, value in eval_metrics.items()}
    try:
        return step, objective(eval_metrics, curve.train_metrics(step))
    except KeyError:
        return None
