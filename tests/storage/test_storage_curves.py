"""The curves table: written per trial in one transaction, read back by plain SQL, idempotent, per study."""

from __future__ import annotations

import math

import pytest
import sqlalchemy

from sweeper.metrics import CurvePoint
from sweeper.storage import CurveStore, open_storage, resolve_storage_url

EVAL_LOSS_CURVE = """
    SELECT trial_number, step, value FROM sweeper_curve_points
    WHERE study_name = :s AND split = 'eval' AND metric = 'loss'
    ORDER BY trial_number, step
"""


def _points(scale: float = 1.0) -> list[CurvePoint]:
    return [
        CurvePoint(step, split, metric, scale * step)
        for step in (10, 20)
        for split in ("train", "eval")
        for metric in ("loss", "rewards/margins")
    ]


@pytest.fixture
def curves(storage_url):
    with CurveStore(storage_url) as store:
        yield store


def _plain_sql(storage_url: str, query: str, **parameters) -> list[tuple]:
    engine = sqlalchemy.create_engine(resolve_storage_url(storage_url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(query), parameters)]
    finally:
        engine.dispose()


def test_written_points_read_back_with_plain_sql(curves, storage_url, unique_name):
    assert curves.write(unique_name, 0, _points()) == 8
    assert _plain_sql(storage_url, EVAL_LOSS_CURVE, s=unique_name) == [(0, 10, 10.0), (0, 20, 20.0)]
    rows = curves.read(unique_name, 0)
    assert len(rows) == 8
    assert rows[0] == {
        "study_name": unique_name, "trial_number": 0, "split": "eval", "metric": "loss", "step": 10, "value": 10.0
    }


def test_rewriting_a_trial_replaces_its_points(curves, unique_name):
    curves.write(unique_name, 0, _points())
    curves.write(unique_name, 1, _points())
    curves.write(unique_name, 0, _points(scale=2.0))  # the trial ran again
    trial_0 = curves.read(unique_name, 0)
    assert len(trial_0) == 8 and {row["value"] for row in trial_0} == {20.0, 40.0}
    assert len(curves.read(unique_name)) == 16
    curves.write(unique_name, 0, [])
    assert curves.read(unique_name, 0) == [] and len(curves.read(unique_name, 1)) == 8


def test_two_studies_do_not_mix(curves, unique_name):
    other = f"{unique_name}-other"
    curves.write(unique_name, 0, _points())
    curves.write(other, 0, _points(scale=3.0))
    assert {row["study_name"] for row in curves.read(unique_name)} == {unique_name}
    assert curves.delete_study(other) == 8
    assert curves.read(other) == [] and len(curves.read(unique_name)) == 8


def test_non_finite_values_are_stored_as_null_on_every_backend(curves, storage_url, unique_name):
    points = [CurvePoint(1, "train", "loss", math.nan), CurvePoint(2, "train", "loss", math.inf)]
    points.append(CurvePoint(3, "train", "loss", 0.5))
    curves.write(unique_name, 0, points)
    assert [row["value"] for row in curves.read(unique_name, 0)] == [None, None, 0.5]
    query = "SELECT step FROM sweeper_curve_points WHERE study_name = :s AND value IS NULL ORDER BY step"
    assert _plain_sql(storage_url, query, s=unique_name) == [(1,), (2,)]


def test_a_repeated_point_keeps_the_later_value(curves, unique_name):
    # TRL's final evaluation repeats the last periodic one at the same step.
    curves.write(unique_name, 0, [CurvePoint(20, "eval", "loss", 0.9), CurvePoint(20, "eval", "loss", 0.8)])
    assert [row["value"] for row in curves.read(unique_name, 0)] == [0.8]


def test_curves_live_beside_the_study_opened_by_open_storage(storage_url, unique_name):
    storage = open_storage(storage_url)
    with CurveStore(storage_url) as curves:
        curves.write(unique_name, 0, _points())
    assert sqlalchemy.inspect(storage.engine).has_table("sweeper_curve_points")
    storage.engine.dispose()


def test_a_read_can_select_metrics_and_a_split_in_sql(curves, unique_name):
    curves.write(unique_name, 0, _points())
    curves.write(unique_name, 1, _points(scale=2.0))
    rows = curves.read(unique_name, metrics=["loss"], split="eval")
    assert [(row["trial_number"], row["step"], row["value"]) for row in rows] == [
        (0, 10, 10.0), (0, 20, 20.0), (1, 10, 20.0), (1, 20, 40.0)
    ]
    assert len(curves.read(unique_name, metrics=["loss", "rewards/margins"])) == 16


def test_reading_named_trials_selects_them_in_order_across_queries(storage_url, unique_name, monkeypatch):
    from sweeper.storage import _curves

    monkeypatch.setattr(_curves, "_NUMBERS_PER_QUERY", 2)  # several queries for five trials
    with CurveStore(storage_url) as curves:
        for number in range(7):
            curves.write(unique_name, number, _points(scale=number))
        rows = curves.read(unique_name, split="eval", metrics=["loss"], trial_numbers=[6, 1, 3, 4, 1, 0])
        assert [(row["trial_number"], row["step"]) for row in rows] == [
            (number, step) for number in (0, 1, 3, 4, 6) for step in (10, 20)
        ]
        assert [row["value"] for row in rows if row["trial_number"] == 6] == [60.0, 120.0]
        assert curves.read(unique_name, trial_numbers=[]) == []


def test_points_are_the_read_rows_as_tuples_and_can_select_steps(curves, unique_name):
    curves.write(unique_name, 0, [*_points(), CurvePoint(30, "eval", "loss", math.inf)])
    curves.write(unique_name, 1, _points(scale=2.0))
    columns = ("trial_number", "split", "metric", "step", "value")
    every = curves.points(unique_name)
    assert every == [tuple(row[column] for column in columns) for row in curves.read(unique_name)]
    assert all(type(value) is float for *_, value in every if value is not None)
    assert (0, "eval", "loss", 30, None) in every  # not finite: NULL, as the dict read gives it
    at_20 = curves.points(unique_name, split="eval", metrics=["loss"], trial_numbers=[1, 0], steps=[20, 25])
    assert at_20 == [(0, "eval", "loss", 20, 20.0), (1, "eval", "loss", 20, 40.0)]


def test_first_steps_from_are_each_trials_first_step_at_or_after_each_threshold(curves, unique_name):
    curves.write(unique_name, 0, _points())  # train and eval at 10 and 20, two metrics each
    curves.write(unique_name, 1, [CurvePoint(5, "eval", "rewards/margins", 1.0), CurvePoint(15, "eval", "loss", 1.0),
                                  CurvePoint(25, "train", "loss", 1.0)])
    curves.write(unique_name, 2, _points())
    found = curves.first_steps_from(unique_name, "eval", ["loss", "rewards/margins"], {1: [0, 1, 3], 11: {0, 1}})
    # a step of any of the metrics counts; trial 3 has no point, trial 1 none at or after 11 but 15; trial 2 not asked
    assert found == {(0, 1): 10, (1, 1): 5, (0, 11): 20, (1, 11): 15}
    assert curves.first_steps_from(unique_name, "eval", ["rewards/margins"], {6: [1], 21: [0]}) == {}
    assert curves.first_steps_from(unique_name, "eval", ["loss"], {10: [0, 1]}) == {(0, 10): 10, (1, 10): 15}


def test_steps_by_trial_are_each_trials_distinct_steps_of_the_named_metrics(curves, unique_name):
    curves.write(unique_name, 0, _points())  # train and eval at 10 and 20, two metrics each
    curves.write(unique_name, 1, [CurvePoint(5, "eval", "rewards/margins", 1.0), CurvePoint(15, "eval", "loss", 1.0),
                                  CurvePoint(25, "train", "loss", 1.0)])
    curves.write(unique_name, 2, _points())
    found = curves.steps_by_trial(unique_name, "eval", ["loss", "rewards/margins"], [0, 1, 3])
    assert found == {0: [10, 20], 1: [5, 15]}  # one entry per step however many metrics; trial 3 has none
    assert curves.steps_by_trial(unique_name, "eval", ["loss"], [1]) == {1: [15]}
