"""Learning curves in their own table beside Optuna's, in the same database, so plain SQL can join the two.

Optuna's intermediate values hold one number per step for one objective; ORPO logs a dozen metrics for two
splits, so every logged point goes to `sweeper_curve_points` instead. Example, a trial's validation loss curve::

    SELECT trial_number, step, value
    FROM sweeper_curve_points
    WHERE study_name = :s AND split = 'eval' AND metric = 'loss'
    ORDER BY trial_number, step

`metric` is TRL's name without the `eval_` prefix (`loss`, `rewards/margins`, ...), the same for both splits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy
from sqlalchemy import CheckConstraint, Double, String, UniqueConstraint, delete, func, insert, select, tuple_
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sweeper.metrics import CurvePoint

from ._fetch import plain_rows
from ._retry import call_with_retries
from ._url import engine_options, resolve_storage_url

CURVES_TABLE = "sweeper_curve_points"
# a stored point as `CurveStore.points` gives it: (trial_number, split, metric, step, value)
StoredPoint = tuple[int, str, str, int, float | None]
_NUMBERS_PER_QUERY = 5000


class _CurvesBase(DeclarativeBase):
    """Own metadata: creating or changing the curves table never touches Optuna's tables."""


class CurvePointRow(_CurvesBase):
    __tablename__ = CURVES_TABLE
    __table_args__ = (
        # One value per point: a retried write replaces, never doubles.
        UniqueConstraint("study_name", "trial_number", "split", "metric", "step", name="uq_sweeper_curve_point"),
        CheckConstraint("split IN ('train', 'eval')", name="ck_sweeper_curve_split"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), index=True)  # Optuna's own limit for study names
    trial_number: Mapped[int]
    step: Mapped[int]
    split: Mapped[str] = mapped_column(String(8))
    metric: Mapped[str] = mapped_column(String(128))
    # NULL where the logged value was NaN or infinite, see `_finite_or_none`.
    value: Mapped[float | None] = mapped_column(Double)


def create_curves_table(engine: sqlalchemy.Engine) -> None:
    """Create `sweeper_curve_points` if it is missing; safe when several workers start at once."""
    try:
        _CurvesBase.metadata.create_all(engine)
    except sqlalchemy.exc.DBAPIError:
        # Another worker created it between our existence check and our CREATE TABLE.
        if not sqlalchemy.inspect(engine).has_table(CURVES_TABLE):
            raise


class CurveStore:
    """Reads and writes the curve points of a study's trials. `url` is any storage URL `open_storage` accepts.

    `engine`: the SQLAlchemy engine of the Optuna storage already open on that URL (`storage.engine`), so that a
    process holds one connection pool per database, not two; it stays open when the store closes."""

    def __init__(self, url: str, engine: sqlalchemy.Engine | None = None) -> None:
        resolved = self._url = resolve_storage_url(url)
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else sqlalchemy.create_engine(resolved, **engine_options(resolved))
        create_curves_table(self._engine)

    def write(self, study_name: str, trial_number: int, points: list[CurvePoint]) -> int:
        """Replace the trial's points with `points` in one transaction; returns how many rows were written.

        Re-running a trial never doubles its curve. Where the same (split, metric, step) appears twice, the later
        point wins: TRL's final evaluation repeats the last periodic one at the same step.
        """
        rows = _rows(study_name, trial_number, points)

        def replace_points() -> None:  # one transaction: a retry after a dropped connection starts over
            with self._engine.begin() as connection:
                connection.execute(delete(CurvePointRow).where(*self._trial_filter(study_name, trial_number)))
                if rows:
                    connection.execute(insert(CurvePointRow), rows)

        call_with_retries(self._url, f"writing the curves of trial {trial_number}", replace_points)
        return len(rows)

    def add(self, study_name: str, trial_number: int, points: list[CurvePoint]) -> int:
        """Add points to a trial's curve while it trains, in one transaction; a point already stored at the same
        (split, metric, step) is replaced. `write` at the end of the trial still replaces the whole curve."""
        rows = _rows(study_name, trial_number, points)
        if not rows:
            return 0
        keys = [(row["split"], row["metric"], row["step"]) for row in rows]
        columns = CurvePointRow.__table__.c

        def add_points() -> None:
            with self._engine.begin() as connection:
                connection.execute(
                    delete(CurvePointRow).where(
                        *self._trial_filter(study_name, trial_number),
                        tuple_(columns.split, columns.metric, columns.step).in_(keys),
                    )
                )
                connection.execute(insert(CurvePointRow), rows)

        call_with_retries(self._url, f"adding to the curves of trial {trial_number}", add_points)
        return len(rows)

    def read(
        self,
        study_name: str,
        trial_number: int | None = None,
        split: str | None = None,
        metrics: Sequence[str] | None = None,
        trial_numbers: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows as dicts (study_name, trial_number, split, metric, step, value), ordered by trial, split, metric, step;
        only one split's with `split` ('train' or 'eval'), only the named metrics' with `metrics`, only the named
        trials' with `trial_numbers` (all selected in SQL: a study of thousands of trials holds millions of points,
        and most computations need two metrics of a few trials).

        No pandas here: `pandas.DataFrame(rows)` where a frame is wanted.
        """
        return [
            {"study_name": study_name, "trial_number": number, "split": split, "metric": metric, "step": step,
             "value": value}
            for number, split, metric, step, value in self.points(
                study_name, trial_number, split, metrics, trial_numbers)
        ]

    def points(
        self,
        study_name: str,
        trial_number: int | None = None,
        split: str | None = None,
        metrics: Sequence[str] | None = None,
        trial_numbers: Sequence[int] | None = None,
        steps: Sequence[int] | None = None,
    ) -> list[StoredPoint]:
        """What `read` selects, as (trial_number, split, metric, step, value) tuples straight from the database
        driver, for readers of thousands of trials (a dict or SQLAlchemy Row each cost half of a pruning decision's
        read at 10,000 trials). `value` is a float, or None where it was not finite. `steps`: only the points at
        these steps."""
        columns = CurvePointRow.__table__.c
        selected = (columns.trial_number, columns.split, columns.metric, columns.step, columns.value)
        order = (columns.trial_number, columns.split, columns.metric, columns.step)
        conditions = [] if steps is None else [columns.step.in_(sorted(set(steps)))]
        # the drivers (sqlite3, psycopg2) give a DOUBLE column as a float: nothing for SQLAlchemy to convert
        return self._select(study_name, selected, order, trial_number, split, metrics, trial_numbers, conditions)

    def steps_by_trial(
        self, study_name: str, split: str, metrics: Sequence[str], trial_numbers: Sequence[int]
    ) -> dict[int, list[int]]:
        """The steps at which each of these trials has a point of any of `metrics` in `split`, ascending; a trial
        without one is missing. Read from the table's unique index alone: a pruning decision finds each peer's rung
        step here, then reads the values at those steps only (`points(steps=...)`)."""
        columns = CurvePointRow.__table__.c
        rows = self._select(study_name, (columns.trial_number, columns.step), (columns.trial_number, columns.step),
                            None, split, metrics, trial_numbers, [], distinct=True)
        found: dict[int, list[int]] = defaultdict(list)
        for number, step in rows:
            found[number].append(step)
        return dict(found)

    def first_steps_from(
        self, study_name: str, split: str, metrics: Sequence[str], trials_from: Mapping[int, Collection[int]]
    ) -> dict[tuple[int, int], int]:
        """For each threshold step and each trial number under it in `trials_from`, the trial's first step at or
        after the threshold with a point of any of `metrics` in `split`, as {(trial_number, threshold): step}; a trial
        without one is missing. One aggregate per threshold, an index seek per trial: a pruning decision's rung steps
        (at 10,000 trials a sixth of the rows of reading every evaluation step, `steps_by_trial`, in half the time)."""
        columns = CurvePointRow.__table__.c
        found: dict[tuple[int, int], int] = {}
        for threshold, trial_numbers in trials_from.items():
            rows = self._select(study_name, (columns.trial_number, func.min(columns.step)), (), None, split, metrics,
                                trial_numbers, [columns.step >= threshold], group_by=columns.trial_number)
            found.update(((number, threshold), step) for number, step in rows)
        return found

    def _select(
        self, study_name, selected, order, trial_number, split, metrics, trial_numbers, conditions, distinct=False,
        group_by=None,
    ) -> list[tuple]:
        columns = CurvePointRow.__table__.c
        conditions = [*self._trial_filter(study_name, trial_number), *conditions]
        if split is not None:
            conditions.append(columns.split == split)
        if metrics is not None:
            conditions.append(columns.metric.in_(list(metrics)))
        numbers = sorted(set(trial_numbers)) if trial_numbers is not None else [None]
        # a few thousand bound values per query at most: SQLite caps them (32,766)
        chunks = [numbers[i:i + _NUMBERS_PER_QUERY] for i in range(0, len(numbers), _NUMBERS_PER_QUERY)]
        queries = []
        for chunk in chunks:
            named = [] if chunk == [None] else [columns.trial_number.in_(chunk)]
            query = select(*selected).where(*conditions, *named)
            query = query.group_by(group_by) if group_by is not None else query
            queries.append((query.distinct() if distinct else query).order_by(*order))

        def read_rows() -> list[tuple]:
            with self._engine.connect() as connection:
                return [row for query in queries for row in plain_rows(connection.execute(query))]

        return call_with_retries(self._url, f"reading the curves of {study_name}", read_rows)

    def delete_study(self, study_name: str) -> int:
        """Delete every point of the study; returns how many rows went."""
        with self._engine.begin() as connection:
            return connection.execute(delete(CurvePointRow).where(CurvePointRow.study_name == study_name)).rowcount

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> "CurveStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _trial_filter(study_name: str, trial_number: int | None) -> list[sqlalchemy.ColumnElement[bool]]:
        conditions = [CurvePointRow.study_name == study_name]
        if trial_number is not None:
            conditions.append(CurvePointRow.trial_number == trial_number)
        return conditions


def _rows(study_name: str, trial_number: int, points: list[CurvePoint]) -> list[dict[str, Any]]:
    # Where the same (split, metric, step) appears twice the later point wins: TRL's final evaluation repeats the
    # last periodic one at the same step.
    latest: dict[tuple[str, str, int], CurvePoint] = {}
    for point in points:
        latest[(point.split, point.metric, point.step)] = point
    return [
        {
            "study_name": study_name,
            "trial_number": trial_number,
            "step": point.step,
            "split": point.split,
            "metric": point.metric,
            "value": _finite_or_none(point.value),
        }
        for point in latest.values()
    ]


def _finite_or_none(value: float) -> float | None:
    # NaN and inf become NULL on every backend: SQLite already turns NaN into NULL while PostgreSQL would keep it,
    # and JSON and most analysis code choke on them. The row stays, so a diverged step is still visible.
    value = float(value)
    return value if math.isfinite(value) else None
