"""The dominated pruner's rule, as pure functions over objective vectors and stored curve rows (no I/O).

A rung is a fraction of a trial's own schedule or an absolute optimizer step (`PrunerSpec.rungs`). A trial's value
at a rung is its objective vector at the first evaluation at or after the rung. A trial is stopped at a rung when,
among the peers that reached it, there are at least `min_peers`, and at least max(1, ceil(dominated_fraction x
peers)) of them dominate it. Lower-is-better and higher-is-better objectives are compared in their own direction; a
missing or non-finite value counts as the worst possible.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..metrics import EVAL, TRAIN

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
class RungDecision:
    rung: float | int
    step: int
    peers: int
    dominated_by: int
    needed: int  # dominating peers that would stop the trial (0: too few peers yet)
    prune: bool

    @property
    def reason(self) -> str:
        rung = f"{self.rung:g} of the schedule" if isinstance(self.rung, float) else f"step {self.rung}"
        verdict = "pruned" if self.prune else "kept"
        return (
            f"{verdict} at rung {rung} (evaluation at step {self.step}): dominated by {self.dominated_by} of "
            f"{self.peers} trials that reached this rung (stops at {self.needed or '-'})"
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
    return RungDecision(rung, step, len(peers), dominated_by, needed, prune=bool(needed) and dominated_by >= needed)


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


def curves_by_trial(rows: Iterable[Mapping[str, Any]]) -> dict[int, _TrialCurve]:
    """Group `CurveStore.read` rows by trial."""
    evals: dict[int, dict[int, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    trains: dict[int, list[tuple[int, str, float | None]]] = defaultdict(list)
    for row in rows:
        if row["split"] == EVAL:
            evals[row["trial_number"]][row["step"]][row["metric"]] = row["value"]
        elif row["split"] == TRAIN:
            trains[row["trial_number"]].append((row["step"], row["metric"], row["value"]))
    return {
        number: _TrialCurve(dict(evals.get(number, {})), sorted(trains.get(number, []), key=lambda point: point[0]))
        for number in set(evals) | set(trains)
    }


def vector_at_rung(
    curve: _TrialCurve, rung: float | int, planned_steps: int | None, objective: ObjectiveFunction
) -> tuple[int, list[float | None]] | None:
    """(step, objective vector) of a trial at a rung, or None where it has not reached the rung or lacks a metric."""
    if planned_steps is None and isinstance(rung, float):
        return None
    step = rung_step(curve.eval_by_step, rung_threshold(rung, planned_steps or 0))
    if step is None:
        return None
    eval_metrics = curve.eval_metrics(step)
    if any(value is None for value in eval_metrics.values()):  # a non-finite value was stored as NULL
        eval_metrics = {key: (math.nan if value is None else value) for key, value in eval_metrics.items()}
    try:
        return step, objective(eval_metrics, curve.train_metrics(step))
    except KeyError:
        return None


def peer_vectors(
    rows: Iterable[Mapping[str, Any]],
    peers: Mapping[int, tuple[int | None, ObjectiveFunction]],
    rung: float | int,
) -> list[list[float | None]]:
    """The objective vectors at `rung` of the peers that reached it. `peers` maps each peer's trial number to its
    planned steps and its objective function (objectives may depend on the trial's own beta)."""
    curves = curves_by_trial(rows)
    vectors = []
    for number, (planned_steps, objective) in peers.items():
        if number not in curves:
            continue
        found = vector_at_rung(curves[number], rung, planned_steps, objective)
        if found is not None:
            vectors.append(found[1])
    return vectors
