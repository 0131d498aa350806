"""A stop signal that lands inside a storage call waits for the call to return (a connection pool's lock or a
SQLite transaction cut in the middle can hang the worker that then records its trial); a failing call is not
retried once a stop waits."""

from __future__ import annotations

import os
import signal
import sqlite3

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from sweeper.storage import call_with_retries, open_storage
from sweeper.sweep import StopRequested, stop_signals_interrupt


def _signal_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # delivered at once: the handler runs before the next bytecode


def test_a_stop_inside_a_storage_call_is_raised_when_the_call_returns():
    done = []

    def call() -> str:
        _signal_self()
        done.append("rest of the call")
        return "stored"

    with stop_signals_interrupt(), pytest.raises(StopRequested) as stop:
        call_with_retries("sqlite://", "test call", call)
    assert done == ["rest of the call"]
    assert stop.value.signum == signal.SIGTERM


def test_a_stop_outside_storage_calls_is_raised_at_once():
    done = []
    with stop_signals_interrupt(), pytest.raises(StopRequested):
        _signal_self()
        done.append("after")
    assert done == []


def test_a_failing_call_is_not_retried_once_a_stop_waits():
    attempts = []

    def locked() -> None:
        attempts.append(None)
        if len(attempts) == 1:
            _signal_self()
        raise sqlalchemy.exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))

    with stop_signals_interrupt(), pytest.raises(StopRequested):
        call_with_retries("sqlite://", "test call", locked, retry_s=5)
    assert len(attempts) == 1


def test_a_stop_during_a_trial_write_leaves_the_storage_usable(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="stop", storage=storage)
    trial = study.ask()
    original = optuna.storages.RDBStorage.set_trial_user_attr

    def interrupted_write(self, trial_id, key, value):
        _signal_self()
        return original(self, trial_id, key, value)

    optuna.storages.RDBStorage.set_trial_user_attr = interrupted_write
    try:
        with stop_signals_interrupt(), pytest.raises(StopRequested):
            trial.set_user_attr("written", True)
    finally:
        optuna.storages.RDBStorage.set_trial_user_attr = original
    study.tell(trial, state=TrialState.FAIL)  # the next write goes through: nothing is left locked
    stored = optuna.load_study(study_name="stop", storage=f"sqlite:///{tmp_path / 'study.db'}").trials[0]
    assert stored.user_attrs == {"written": True} and stored.state == TrialState.FAIL
