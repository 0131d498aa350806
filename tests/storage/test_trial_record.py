"""The trial record: every field a trial stores goes through one schema, written and read back as user attributes."""

from __future__ import annotations

import optuna
import pytest

from sweeper.storage import TrialRecord, store, stored_fields

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_fields_written_a_few_at_a_time_read_back_as_one_record():
    study = optuna.create_study(directions=["minimize", "maximize"])
    trial = study.ask()
    store(trial, worker="host:1", planned_steps=144, training_config={"orpo": {"beta": 0.1}})
    store(trial, metrics={"eval_nll_loss": 2.5, "train_rewards/margins": None}, global_steps=144, train_rows=96)
    record = TrialRecord.of(study.trials[0])
    assert (record.worker, record.planned_steps, record.global_steps, record.train_rows) == ("host:1", 144, 144, 96)
    assert record.training_config == {"orpo": {"beta": 0.1}}
    # train_rows is a field, not a metric, although it starts with train_
    assert record.metrics == {"eval_nll_loss": 2.5, "train_rewards/margins": None}
    assert record.pruned_reason is None and record.failure_reason is None  # not stored: None
    # one attribute per field and per metric, where optuna-dashboard shows them
    assert study.trials[0].user_attrs["eval_nll_loss"] == 2.5 and study.trials[0].user_attrs["planned_steps"] == 144


def test_a_name_outside_the_schema_is_refused_before_anything_is_stored():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(TypeError, match="not fields of TrialRecord: planned_step"):
        store(trial, planned_step=8, worker="host:1")
    with pytest.raises(TypeError, match="must start with train_ or eval_"):
        store(trial, metrics={"nll_loss": 1.0})
    with pytest.raises(TypeError, match="must start with train_ or eval_ and not be a field's: train_rows"):
        store(trial, metrics={"train_rows": 3})
    assert study.trials[0].user_attrs == {}


def test_stored_fields_are_the_records_fields_without_the_record():
    study = optuna.create_study()
    trial = study.ask()
    store(trial, planned_steps=144, training_config={"orpo": {"beta": 0.1}})
    frozen = study.trials[0]
    assert stored_fields(frozen, ("training_config", "planned_steps", "runtime_s")) == (
        TrialRecord.of(frozen).training_config, 144, None)
    with pytest.raises(TypeError, match="not fields of TrialRecord: planned_step"):
        stored_fields(frozen, ("planned_step",))


def test_a_record_gives_the_attributes_it_stores_for_a_queued_trial():
    study = optuna.create_study()
    study.enqueue_trial({}, user_attrs=TrialRecord(replicate_of=3, replicate_seed=1).user_attrs())
    assert study.trials[0].user_attrs == {"replicate_of": 3, "replicate_seed": 1}
    assert TrialRecord.of(study.trials[0]).replicate_of == 3
