"""Real tiny sweeps in this process: trials, objectives, user attributes and curves stored; resume; failures."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from sweeper.config import ConfigError
from sweeper.metrics import ORPO_METRICS
from sweeper.storage import open_storage
from sweeper.study import load_study_spec
from sweeper.sweep import HeartbeatSettings, open_study, run_worker, status_rows

# FAST_TRIAL in tests/conftest.py: 8 steps, logged every 2, evaluated every 4 (and before training).
TRAIN_STEPS = [2, 4, 6, 8]
EVAL_STEPS = [0, 4, 8]


def _sweep(study_file, **load_options) -> optuna.Study:
    spec = load_study_spec(study_file, **load_options)
    return run_worker(spec, show_progress=False)


@pytest.mark.integration
def test_multi_objective_sweep_on_sqlite_stores_trials_objectives_and_every_curve_point(write_fast_study):
    study_file = write_fast_study(n_trials=3)
    spec = load_study_spec(study_file)
    _sweep(study_file)

    # Plain Optuna, no sweeper code: what optuna-dashboard and a user's notebook see.
    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert study.metric_names == ["eval_nll_loss", "eval_logp_margin"]
    for trial in trials:
        attrs = trial.user_attrs
        nll, logp_margin = trial.values
        assert nll == pytest.approx(attrs["eval_nll_loss"])
        beta = attrs["training_config"]["orpo"]["beta"]
        assert logp_margin == pytest.approx(attrs["eval_rewards/margins"] / beta, rel=1e-3, abs=1e-6)
        assert math.isfinite(attrs["eval_loss"])  # the raw, beta-weighted values are kept beside the objectives
        assert attrs["effective_batch_size"] == trial.params["per_device_train_batch_size"]
        assert attrs["runtime_s"] > 0 and len(attrs["config_hash"]) >= 12
        assert 0 <= attrs["suggest_s"] < attrs["runtime_s"]  # the sampler's cost, beside the training's
        assert {"torch", "trl", "peft", "optuna"} <= set(attrs["library_versions"])
        assert "failure_reason" not in attrs

    # Plain SQL on the curves table: every metric, both splits, every logged step, for every trial.
    engine = sqlalchemy.create_engine(spec.storage)
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT trial_number, split, metric, step, value FROM sweeper_curve_points WHERE study_name = :name"
            ),
            {"name": spec.study_name},
        ).all()
    engine.dispose()
    points = {(trial, split, metric, step) for trial, split, metric, step, _ in rows}
    for trial in trials:
        for metric in ORPO_METRICS:
            for step in TRAIN_STEPS:
                assert (trial.number, "train", metric, step) in points, (trial.number, metric, step)
            for step in EVAL_STEPS:
                assert (trial.number, "eval", metric, step) in points, (trial.number, metric, step)
    assert all(value is not None and math.isfinite(value) for *_, value in rows)
    assert len(rows) == len(points)  # no point stored twice


@pytest.mark.integration
def test_running_again_resumes_to_the_target_without_repeating_finished_trials(write_fast_study):
    first = _sweep(write_fast_study(n_trials=2))
    finished = {t.number: (t.params, t.datetime_complete) for t in first.get_trials()}

    resumed = _sweep(write_fast_study(n_trials=4))
    trials = resumed.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for number, (params, completed_at) in finished.items():
        assert trials[number].params == params and trials[number].datetime_complete == completed_at
    # the resumed process seeds its sampler from the same study file: it must continue, not replay trials 0 and 1
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4, [t.params for t in trials]

    again = _sweep(write_fast_study(n_trials=4))  # target already reached: nothing runs
    assert len(again.get_trials()) == 4


@pytest.mark.integration
def test_failures_are_stored_with_their_reason_and_the_study_goes_on(write_fast_study, monkeypatch):
    # max_grad_norm 0 turns clipping off, so a huge learning rate really blows the weights up.
    study_file = write_fast_study(n_trials=5, training={"orpo.max_grad_norm": 0.0})
    spec = load_study_spec(study_file)
    study = open_study(spec, open_storage(spec.storage))
    good = {"learning_rate": 3e-3, "weight_decay": 0.0}
    study.enqueue_trial({**good, "per_device_train_batch_size": 4, "weight_decay": 0.0777})  # raises
    study.enqueue_trial({**good, "per_device_train_batch_size": 4, "learning_rate": 1e30})  # diverges
    study.enqueue_trial({**good, "per_device_train_batch_size": 8})  # OOM at 8, passes at 4
    study.enqueue_trial({**good, "per_device_train_batch_size": 2})  # runs as asked
    monkeypatch.setenv("SWEEPER_FAULT_RAISE_IF", "orpo.weight_decay=0.0777")
    monkeypatch.setenv("SWEEPER_FAULT_OOM_ABOVE_MICRO_BATCH", "4")

    trials = _sweep(study_file).get_trials()

    assert len(trials) == 5
    raised, diverged, out_of_memory, small, sampled = trials
    assert raised.state == TrialState.FAIL and raised.user_attrs["failure_reason"] == "InjectedFault"
    assert diverged.state == TrialState.FAIL and diverged.user_attrs["failure_reason"] == "non-finite loss"
    assert out_of_memory.state == TrialState.COMPLETE
    assert out_of_memory.user_attrs["effective_batch_size"] == 8  # 4 x 2 after the retry: the same as asked
    assert "out of memory" in " ".join(out_of_memory.user_attrs["notes"])
    assert small.state == TrialState.COMPLETE and "notes" not in small.user_attrs
    assert sampled.state in (TrialState.COMPLETE, TrialState.FAIL)  # sampled after the failures: the study went on
    if sampled.state == TrialState.FAIL:
        assert sampled.user_attrs["failure_reason"]


@pytest.mark.integration
def test_out_of_memory_at_the_smallest_micro_batch_fails_with_its_reason(write_fast_study, monkeypatch):
    study_file = write_fast_study(n_trials=1)
    spec = load_study_spec(study_file)
    open_study(spec, open_storage(spec.storage)).enqueue_trial(
        {"learning_rate": 3e-3, "weight_decay": 0.0, "per_device_train_batch_size": 4}
    )
    monkeypatch.setenv("SWEEPER_FAULT_OOM_ABOVE_MICRO_BATCH", "1")  # 4 fails, and so does 2 on the retry

    (trial,) = _sweep(study_file).get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["failure_reason"] == "out of memory"


def test_a_study_name_reused_with_other_objectives_is_refused(write_fast_study):
    spec = load_study_spec(write_fast_study(n_trials=1))
    open_study(spec, open_storage(spec.storage))
    flipped = load_study_spec(
        write_fast_study(
            n_trials=1,
            objectives=[
                {"name": "eval_loss_unit_beta", "direction": "minimize"},
                {"name": "eval_reward_accuracy", "direction": "maximize"},
            ],
        )
    )
    with pytest.raises(ConfigError, match="already exists.*choose a new study_name"):
        open_study(flipped, open_storage(flipped.storage))
    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]  # untouched


def test_joining_a_study_reads_no_trials(write_fast_study, monkeypatch):
    """Every sweep and worker joins its study: Optuna's study summaries would read every trial of every study (9 s at
    3,000 trials of a real trial's size)."""
    spec = load_study_spec(write_fast_study(n_trials=1))
    created = open_study(spec, open_storage(spec.storage))

    def refuse(*args, **kwargs):
        raise AssertionError("open_study read the trials")

    monkeypatch.setattr(optuna, "get_all_study_summaries", refuse)
    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_trials", refuse)
    joined = open_study(spec, open_storage(spec.storage))
    assert joined._study_id == created._study_id


@pytest.mark.integration
def test_status_rows_mark_the_pareto_front(write_fast_study):
    study = _sweep(write_fast_study(n_trials=3))
    rows = status_rows(study)
    front = {t.number for t in study.best_trials}
    assert {row["number"] for row in rows if row["pareto"]} == front and front
    assert all(row["state"] == "COMPLETE" and len(row["values"]) == 2 for row in rows)
    # Optuna names a parameter by the last part of its path, so the dashboard stays readable
    assert set(rows[0]["params"]) == {"learning_rate", "per_device_train_batch_size", "weight_decay"}


def _lose_a_stop_signal(monkeypatch, signum):
    """What a stop signal leaves behind when Python ignores its exception (raised inside a weakref callback, say):
    the signal is recorded, nothing was raised."""
    import signal

    from sweeper.sweep import _signals

    monkeypatch.setattr(_signals, "_received", _signals.StopRequested(getattr(signal, signum)))


def test_a_lost_stop_signal_starts_no_trial(write_fast_study, monkeypatch):
    from sweeper.sweep import StopRequested

    study_file = write_fast_study(n_trials=2)
    _lose_a_stop_signal(monkeypatch, "SIGTERM")
    with pytest.raises(StopRequested):
        _sweep(study_file)
    spec = load_study_spec(study_file)
    assert optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials() == []


@pytest.mark.integration
def test_a_stop_signal_lost_during_a_trial_stops_it_at_its_next_step_as_interrupted(write_fast_study, monkeypatch):
    """tests/reliability/test_signals.py saw this in CI: SIGTERM's StopRequested raised inside a weakref callback,
    ignored by Python, and the worker trained on and exited 0."""
    from sweeper.sweep import StopRequested, _objective

    class SignalLostAtStep2(_objective.StopWhenSet):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                _lose_a_stop_signal(monkeypatch, "SIGTERM")
            return super().on_step_end(args, state, control, **kwargs)

    monkeypatch.setattr(_objective, "StopWhenSet", SignalLostAtStep2)
    study_file = write_fast_study(n_trials=2)
    with pytest.raises(StopRequested):
        _sweep(study_file)
    spec = load_study_spec(study_file)
    trial, copy = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["failure_reason"] == "interrupted"
    assert copy.state == TrialState.WAITING and copy.params == trial.params  # SIGTERM: queued again, as always


@pytest.mark.integration
def test_a_trial_whose_first_heartbeat_never_landed_is_failed_and_run_again(write_fast_study):
    # its worker's first beat failed (a full disk) and the worker stopped: RUNNING, no heartbeat row, counted toward
    # the target; a resumed sweep used to find the target reached, wait for nothing and stop one trial short
    spec = load_study_spec(write_fast_study(n_trials=1))
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=1, grace_period_s=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Optuna: heartbeats are meant for Study.optimize
        silent = study.ask()
    spec.space.suggest(silent)
    run_worker(spec, heartbeat=HeartbeatSettings(interval_s=1, grace_s=2), show_progress=False)
    failed, rerun = study.get_trials(deepcopy=False)
    assert (failed.state, rerun.state) == (TrialState.FAIL, TrialState.COMPLETE)
    assert rerun.params == failed.params and rerun.system_attrs["failed_trial"] == failed.number
