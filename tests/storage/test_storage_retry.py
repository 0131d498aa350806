"""Riding through a storage outage: which errors are retried, what the log says, and that a retried write is not
stored twice. The end-to-end drill (a real PostgreSQL restart) is tests/reliability/test_faults.py."""

from __future__ import annotations

import logging
import sqlite3

import optuna
import psycopg2
import pytest
import sqlalchemy
from optuna.trial import TrialState

from sweeper.storage import StorageFailure, call_with_retries, open_storage, storage_failures_explained
from sweeper.storage._retry import RetryingRDBStorage, is_transient, nothing_was_sent

URL_WITH_PASSWORD = "postgresql+psycopg2://sweeper:s3cret@db.example:5432/sweeps"


def _dbapi(orig: Exception, invalidated: bool = False) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_dbapi(psycopg2.OperationalError("server closed the connection unexpectedly"), invalidated=True), True),
        (_dbapi(psycopg2.OperationalError('connection to server at "127.0.0.1" failed: Connection refused')), True),
        (_dbapi(psycopg2.OperationalError("FATAL: the database system is starting up")), True),
        (_dbapi(psycopg2.OperationalError('FATAL: password authentication failed for user "sweeper"')), False),
        (_dbapi(sqlite3.OperationalError("database is locked")), True),
        (_dbapi(sqlite3.OperationalError("database or disk is full")), False),
        (_dbapi(sqlite3.OperationalError("attempt to write a readonly database")), False),
        (ValueError("not a storage error"), False),
    ],
)
def test_only_lost_connections_and_locks_are_retried(error, transient):
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = error
    assert is_transient(error) is transient
    assert is_transient(wrapped) is transient  # as Optuna raises it


def test_a_retried_call_logs_one_line_per_retry_without_the_password(caplog):
    failures = [_dbapi(psycopg2.OperationalError("server closed the connection unexpectedly"), invalidated=True)] * 2

    def flaky() -> str:
        if failures:
            raise failures.pop()
        return "stored"

    with caplog.at_level(logging.WARNING, logger="sweeper.storage._retry"):
        assert call_with_retries(URL_WITH_PASSWORD, "set_trial_user_attr", flaky) == "stored"
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3, lines  # two retries, then "succeeded after 2 retries"
    assert "retry 1 in 0.5 s" in lines[0] and "server closed the connection unexpectedly" in lines[0]
    assert "succeeded after 2 retries" in lines[-1]
    assert all("s3cret" not in line and "sweeper:***@db.example" in line for line in lines)


def test_retries_stop_after_the_time_limit():
    def down() -> None:
        raise _dbapi(psycopg2.OperationalError("Connection refused"))

    with pytest.raises(sqlalchemy.exc.OperationalError):
        call_with_retries(URL_WITH_PASSWORD, "get_trial", down, retry_s=1.0)


def test_a_permanent_error_is_raised_at_once():
    calls = []

    def full() -> None:
        calls.append(1)
        raise _dbapi(sqlite3.OperationalError("database or disk is full"))

    with pytest.raises(sqlalchemy.exc.OperationalError):
        call_with_retries("sqlite:////tmp/x.db", "set_trial_user_attr", full)
    assert calls == [1]


def test_storage_failure_says_what_to_do_and_hides_the_password():
    cause = _dbapi(psycopg2.OperationalError(f"could not write: {URL_WITH_PASSWORD}"))
    with pytest.raises(StorageFailure) as caught, storage_failures_explained(URL_WITH_PASSWORD):
        try:
            raise optuna.exceptions.StorageInternalError("commit failed") from cause
        except optuna.exceptions.StorageInternalError:
            raise AssertionError("Should not reach.")  # Optuna's own follow-up error, the storage error as context
    message = str(caught.value)
    assert "s3cret" not in message
    assert "sweeper:***@db.example" in message and "run the same command again to resume" in message


def test_other_errors_pass_through_unchanged():
    with pytest.raises(KeyError), storage_failures_explained(URL_WITH_PASSWORD):
        raise KeyError("not a storage problem")


def test_a_state_stored_before_the_connection_dropped_is_not_an_error(tmp_path, monkeypatch):
    """The commit reached the database but its answer was lost: the retry finds the trial finished already and
    reports success instead of failing the worker (and no second trial is created)."""
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval_s=None)
    study = optuna.create_study(storage=storage, directions=["minimize"])
    trial = study.ask()
    real = optuna.storages.RDBStorage.set_trial_state_values
    calls = []

    def commit_then_drop(self, trial_id, state, values=None):
        calls.append(state)
        result = real(self, trial_id, state, values)
        if len(calls) == 1:
            raise _dbapi(psycopg2.OperationalError("server closed the connection unexpectedly"), invalidated=True)
        return result

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", commit_then_drop)
    assert isinstance(storage, RetryingRDBStorage)
    assert storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.5]) is True
    monkeypatch.undo()
    assert len(calls) == 2
    assert [(t.state, t.values) for t in study.get_trials()] == [(TrialState.COMPLETE, [1.5])]
    storage.engine.dispose()


@pytest.mark.parametrize(
    ("error", "safe"),
    [
        (_dbapi(psycopg2.OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')), True),
        (_dbapi(psycopg2.OperationalError('connection to server at "127.0.0.1", port 5432 failed: FATAL: the database '
                                          "system is shutting down")), True),
        (_dbapi(psycopg2.OperationalError("FATAL: the database system is starting up")), True),
        (_dbapi(sqlite3.OperationalError("database is locked")), True),
        # the connection was open: the commit may have landed before it dropped
        (_dbapi(psycopg2.OperationalError("server closed the connection unexpectedly"), invalidated=True), False),
        (_dbapi(psycopg2.OperationalError('FATAL: password authentication failed for user "sweeper"')), False),
    ],
)
def test_a_trial_is_created_again_only_when_nothing_was_sent(error, safe):
    assert nothing_was_sent(error) is safe


@pytest.mark.parametrize("safe", [True, False])
def test_creating_a_trial_rides_through_a_refused_connection_but_never_stores_two(tmp_path, monkeypatch, safe):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval_s=None)
    study = optuna.create_study(storage=storage, directions=["minimize"])
    real = optuna.storages.RDBStorage._create_new_trial
    calls = []

    def fail_once(self, study_id, template_trial=None):
        calls.append(study_id)
        if len(calls) == 1:
            if safe:  # the server refused the connection: nothing reached it
                raise _dbapi(psycopg2.OperationalError('connection to server at "127.0.0.1" failed: Connection refused'))
            real(self, study_id, template_trial)  # stored, then the answer was lost
            raise _dbapi(psycopg2.OperationalError("server closed the connection unexpectedly"), invalidated=True)
        return real(self, study_id, template_trial)

    monkeypatch.setattr(optuna.storages.RDBStorage, "_create_new_trial", fail_once)
    if safe:
        study.ask()
        assert len(calls) == 2
    else:
        with pytest.raises(sqlalchemy.exc.OperationalError):  # the worker stops; a rerun resumes the study
            study.ask()
        assert len(calls) == 1
    monkeypatch.undo()
    assert len(study.get_trials()) == 1  # one trial either way: never a second, orphaned one
    storage.engine.dispose()
