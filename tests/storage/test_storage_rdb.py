"""open_storage: Optuna's tables plus the curves table, and heartbeats that re-queue a dead worker's trial."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweeper.storage import CURVES_TABLE, Storage, beating_trials, open_storage, time_silent_trials


def test_open_storage_creates_optunas_tables_and_the_curves_store_its_table(storage_url):
    storage = Storage.open(storage_url)
    if storage_url.startswith("sqlite"):  # a new file: the shared server has the table from other tests
        assert CURVES_TABLE not in sqlalchemy.inspect(storage.engine).get_table_names()  # until a store needs it
    storage.curves
    try:
        inspector = sqlalchemy.inspect(storage.engine)
        tables = set(inspector.get_table_names())
        assert {"studies", "trials", "trial_params", "trial_user_attributes", "trial_heartbeats"} <= tables
        assert CURVES_TABLE in tables
        columns = {column["name"] for column in inspector.get_columns(CURVES_TABLE)}
        assert columns == {"id", "study_name", "trial_number", "step", "split", "metric", "value"}
        unique = [set(c["column_names"]) for c in inspector.get_unique_constraints(CURVES_TABLE)]
        assert {"study_name", "trial_number", "split", "metric", "step"} in unique
        assert any(index["column_names"] == ["study_name"] for index in inspector.get_indexes(CURVES_TABLE))
    finally:
        storage.engine.dispose()


def test_opening_twice_reuses_the_tables(storage_url, unique_name):
    first = open_storage(storage_url)
    optuna.create_study(study_name=unique_name, storage=first)
    second = open_storage(storage_url)
    assert optuna.load_study(study_name=unique_name, storage=second).study_name == unique_name
    first.engine.dispose()
    second.engine.dispose()


def test_engine_options_suit_the_backend(storage_url):
    storage = open_storage(storage_url)
    storage.engine.dispose()
    if storage.engine.dialect.name == "sqlite":
        assert storage.engine_kwargs["connect_args"]["timeout"] >= 30
    else:
        assert storage.engine.dialect.driver == "psycopg2"
        assert storage.engine_kwargs["pool_pre_ping"] is True
    assert storage.heartbeat_interval == 30
    assert isinstance(storage.heartbeat_stale_trial_callback, optuna.storages.RetryHeartbeatStaleTrialCallback)


def test_trial_of_a_dead_worker_is_failed_and_requeued_with_its_params(storage_url, unique_name):
    storage = open_storage(storage_url, heartbeat_interval_s=1, grace_period_s=2)
    study = optuna.create_study(study_name=unique_name, storage=storage)

    # A worker starts a trial, sends one heartbeat, then dies: nothing heartbeats or tells after this.
    trial_id = storage.create_new_trial(study._study_id)
    storage.set_trial_param(trial_id, "learning_rate", 3e-4, FloatDistribution(1e-5, 1e-3, log=True))
    storage.set_trial_param(trial_id, "lora_r", 16, IntDistribution(4, 64))
    storage.record_heartbeat(trial_id)
    started = time.monotonic()
    dead = storage.get_trial(trial_id)

    # await the state: the trial is failed once its last beat is older than the grace period (2 s), not before
    deadline = time.monotonic() + 15
    while storage.get_trial(trial_id).state == TrialState.RUNNING:
        assert time.monotonic() < deadline, "the dead worker's trial was never failed"
        time.sleep(0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    assert time.monotonic() - started > 1.5  # not failed while its heartbeat was fresh (grace 2 s)

    failed, retry = optuna.load_study(study_name=unique_name, storage=storage).trials
    assert failed.number == dead.number and failed.state == TrialState.FAIL
    assert retry.state == TrialState.WAITING
    assert retry.params == {"learning_rate": 3e-4, "lora_r": 16}
    assert retry.system_attrs["failed_trial"] == dead.number
    assert retry.system_attrs["retry_history"] == [dead.number]

    # The next worker that asks runs the retry, with the same parameters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Optuna: heartbeats are meant for Study.optimize
        resumed = study.ask()
    assert resumed.number == retry.number
    assert resumed.suggest_float("learning_rate", 1e-5, 1e-3, log=True) == pytest.approx(3e-4)
    study.tell(resumed, 1.0)
    storage.engine.dispose()


def test_a_trial_that_never_beat_gets_a_grace_period_then_is_failed_and_requeued(storage_url, unique_name):
    storage = open_storage(storage_url, heartbeat_interval_s=1, grace_period_s=2)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    # Its worker's first beat never landed (a full disk), and the worker is gone: no heartbeat row at all.
    silent = storage.create_new_trial(study._study_id)
    storage.set_trial_param(silent, "learning_rate", 3e-4, FloatDistribution(1e-5, 1e-3, log=True))
    beating = storage.create_new_trial(study._study_id)
    storage.record_heartbeat(beating)
    assert beating_trials(study) == [1]
    started = time.monotonic()
    assert time_silent_trials(study) == [0]  # its grace period starts now
    assert beating_trials(study) == [0, 1] and time_silent_trials(study) == []

    deadline = time.monotonic() + 15
    while storage.get_trial(silent).state == TrialState.RUNNING:
        assert time.monotonic() < deadline, "the trial that never beat was never failed"
        time.sleep(0.1)
        storage.record_heartbeat(beating)  # a live worker's trial: never failed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    assert time.monotonic() - started > 1.5  # not failed within its grace period (2 s)
    failed, alive, retry = optuna.load_study(study_name=unique_name, storage=storage).trials
    assert (failed.state, alive.state, retry.state) == (TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)
    assert retry.params == {"learning_rate": 3e-4} and retry.system_attrs["failed_trial"] == failed.number
    storage.engine.dispose()


def test_without_heartbeats_no_trial_is_timed(storage_url, unique_name):
    storage = open_storage(storage_url, heartbeat_interval_s=None)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    storage.create_new_trial(study._study_id)
    assert time_silent_trials(study) == [] and beating_trials(study) == []
    storage.engine.dispose()


def _open_at_once(url: str, barrier) -> None:
    from sweeper.storage import open_storage

    barrier.wait()
    open_storage(url, heartbeat_interval_s=None).engine.dispose()


@pytest.mark.integration
def test_processes_opening_a_new_database_together_all_succeed(tmp_path):
    # a `sweep` and a `worker` started together both create Optuna's schema; the loser of that race must open again
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for round_number in range(3):
        url = f"sqlite:///{tmp_path / f'race-{round_number}.db'}"
        barrier = context.Barrier(4)
        processes = [context.Process(target=_open_at_once, args=(url, barrier)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
