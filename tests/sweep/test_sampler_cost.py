"""The sampler's cost per suggestion: the GP sampler's fast path is installed, a worker says once when suggesting
costs more than a set share of a trial's training, and it stops before asking the GP sampler past its max_trials."""

from __future__ import annotations

import logging

import pytest

from sweeper.config import ConfigError
from sweeper.storage import open_storage
from sweeper.study import load_study_spec
from sweeper.study._samplers import GP_MAX_TRIALS
from sweeper.sweep import open_study, run_worker
from sweeper.sweep._objective import SAMPLER_SHARE_WARNED, sampler_cost_warning
from sweeper.sweep._worker import sampler_refusal


def test_the_gp_sampler_has_its_batched_fast_path():
    # without greenlet Optuna's GP sampler warns at every suggestion and optimises its acquisition one start at a time
    from optuna._gp import batched_lbfgsb

    assert batched_lbfgsb._greenlet_imports.is_successful()


def test_a_suggestion_costing_more_than_the_set_share_of_training_is_named_with_the_fix():
    runtime_s = 10.0
    assert sampler_cost_warning("gp", SAMPLER_SHARE_WARNED * runtime_s * 0.9, runtime_s, 7) is None
    warning = sampler_cost_warning("gp", 6.0, runtime_s, 812)
    assert "gp sampler took 6.0 s to suggest trial 812, 60% of its training (10.0 s)" in warning
    assert "sampler: {name: tpe}" in warning


def test_the_gp_sampler_takes_max_trials_and_no_other_sampler_does(write_fast_study):
    assert load_study_spec(write_fast_study(sampler={"name": "gp"})).sampler.max_trials == GP_MAX_TRIALS
    assert load_study_spec(write_fast_study(sampler={"name": "gp", "max_trials": 5000})).sampler.max_trials == 5000
    with pytest.raises(ConfigError, match="max_trials: only the gp sampler takes it, not tpe"):
        load_study_spec(write_fast_study(sampler={"name": "tpe", "max_trials": 5000}))
    with pytest.raises(ConfigError, match="max_trials: 0 must be a whole number >= 1"):
        load_study_spec(write_fast_study(sampler={"name": "gp", "max_trials": 0}))


def test_a_worker_stops_before_asking_the_gp_sampler_past_its_max_trials(write_fast_study, caplog):
    spec = load_study_spec(write_fast_study(n_trials=10, sampler={"name": "gp", "seed": 0, "max_trials": 3}))
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    for value in (1.0, 2.0, 3.0, 4.0):
        trial = study.ask()
        spec.space.suggest(trial)
        study.tell(trial, [value, value])
    with caplog.at_level(logging.WARNING):
        run_worker(spec, show_progress=False)  # past 3 completed trials: no trial asked for, none trained
    assert len(study.get_trials(deepcopy=False)) == 4
    assert "the gp sampler would suggest from 4 completed trials, more than its max_trials (3)" in caplog.text
    assert "sampler: {name: tpe}" in caplog.text
    assert sampler_refusal(spec.model_copy(update={"sampler": spec.sampler.model_copy(update={"max_trials": 4})}),
                           study) is None  # at its max_trials it still suggests
