"""Riding through a storage that drops out for a while: a database restart, a failover, a busy SQLite file.

Every call to Optuna's storage (and every curve write) is retried with a growing pause while the error is a lost
connection or a lock, for at most `STORAGE_RETRY_S` seconds, with one log line per retry. Errors that waiting
cannot fix (disk full, read-only file, refused login) are raised at once; a sweep stopped by one keeps every
trial stored before it, and `StorageFailure` says so.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import optuna
import sqlalchemy

from ._optuna_internals import PRIVATE_CREATE_METHOD, PRIVATE_STORAGE_METHODS, read_trials_as_optuna
from ._stop_points import raise_pending_stop, stop_pending, storage_call
from ._url import driver_message, redact_url

log = logging.getLogger(__name__)
T = TypeVar("T")

STORAGE_RETRY_S = 120.0  # longer than a PostgreSQL restart or failover; a dead server still fails in minutes
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.5, 8.0

# Messages of errors that pass once the server is back or the lock is released.
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "busy")
# PostgreSQL connection errors that retrying cannot fix.
_PERMANENT_POSTGRES = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied")


class StorageFailure(RuntimeError):
    """The storage refused or lost a call that retrying did not fix. The message is safe to show (no password)."""


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen = 0
    while error is not None and seen < 10:  # Optuna wraps SQLAlchemy's error as StorageInternalError's cause
        yield error
        error, seen = error.__cause__ or error.__context__, seen + 1


def _dbapi_error(error: BaseException) -> sqlalchemy.exc.DBAPIError | None:
    return next((link for link in _chain(error) if isinstance(link, sqlalchemy.exc.DBAPIError)), None)


def _storage_error(error: BaseException) -> BaseException | None:
    storage_errors = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError)
    return next((link for link in _chain(error) if isinstance(link, storage_errors)), None)


def is_transient(error: BaseException) -> bool:
    """A lost connection or a lock: worth waiting for. Anything else is raised at once."""
    dbapi = _dbapi_error(error)
    if dbapi is None:
        return False
    if dbapi.connection_invalidated:
        return True
    text = str(dbapi.orig).lower()
    if type(dbapi.orig).__module__.startswith("sqlite3"):
        return any(marker in text for marker in _TRANSIENT_SQLITE)
    is_connection_error = isinstance(dbapi, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
    return is_connection_error and not any(marker in text for marker in _PERMANENT_POSTGRES)


# How libpq words a connection that could not be opened: no statement was sent on it.
_NOT_CONNECTED_POSTGRES = ("connection to server", "could not connect to server")
# What the server says only to a connection it refuses while starting or stopping.
_REFUSED_WHILE_RESTARTING = ("the database system is starting up", "the database system is shutting down")


def nothing_was_sent(error: BaseException) -> bool:
    """A transient error that leaves no doubt that the call stored nothing: no connection could be opened to
    PostgreSQL, or SQLite's lock kept the write out. (A connection lost mid-call may have committed first.)"""
    if not is_transient(error):
        return False
    dbapi = _dbapi_error(error)
    text = str(dbapi.orig).lower()
    if type(dbapi.orig).__module__.startswith("sqlite3"):
        return True
    return any(text.startswith(marker) for marker in _NOT_CONNECTED_POSTGRES) or any(
        marker in text for marker in _REFUSED_WHILE_RESTARTING
    )


def describe_storage_error(error: BaseException, url: str) -> str:
    """One line, password hidden: what the database said."""
    dbapi = _dbapi_error(error)
    if dbapi is not None:
        return driver_message(dbapi, url)
    text = " ".join(str(error).split()) or type(error).__name__
    return redact_url(text) if "://" in text else text


def call_with_retries(
    url: str,
    what: str,
    call: Callable[[], T],
    retry_s: float = STORAGE_RETRY_S,
    retry_if: Callable[[BaseException], bool] = is_transient,
    stop_waits: bool = True,
) -> T:
    """`call()`, retried while it fails with an error `retry_if` accepts (by default a transient storage error), for
    at most `retry_s` seconds. A stop signal waits for it to return (see _stop_points.py) unless `stop_waits` is
    False (a call that may block for long, like waiting for a lock another worker holds)."""
    if not stop_waits:
        return _call_with_retries(url, what, call, retry_s, retry_if)
    with storage_call():
        return _call_with_retries(url, what, call, retry_s, retry_if)


def _call_with_retries(
    url: str, what: str, call: Callable[[], T], retry_s: float, retry_if: Callable[[BaseException], bool]
) -> T:
    started = time.monotonic()
    pause_s, attempt = _FIRST_PAUSE_S, 0
    while True:
        try:
            result = call()
        except Exception as error:
            waited_s = time.monotonic() - started
            if not retry_if(error) or waited_s + pause_s > retry_s:
                raise
            if stop_pending():  # stopping: a retry would only delay it
                raise_pending_stop()
            attempt += 1
            log.warning(
                "storage %s: %s failed (%s); retry %d in %.1f s, giving up after %.0f s",
                redact_url(url), what, describe_storage_error(error, url), attempt, pause_s, retry_s,
            )
            time.sleep(pause_s)
            pause_s = min(2 * pause_s, _LONGEST_PAUSE_S)
            continue
        if attempt:
            log.warning("storage %s: %s succeeded after %d retries", redact_url(url), what, attempt)
        return result


@contextmanager
def storage_failures_explained(url: str) -> Iterator[None]:
    """A storage error that outlasted the retries becomes a StorageFailure saying what happened and what to do."""
    try:
        yield
    except Exception as error:
        # Optuna, failing to store a trial's FAIL state, raises an AssertionError whose context is the storage error
        if _storage_error(error) is None:
            raise
        raise StorageFailure(
            f"storage {redact_url(url)} failed: {describe_storage_error(error, url)}. Trials finished before this "
            "point are stored and unchanged. Fix: free disk space, make the storage writable or bring the server "
            "back, then run the same command again to resume"
        ) from None


# Optuna's storage methods a worker calls; nested calls (one method using another) are retried only at the top.
_RETRIED_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id", "get_trial_param", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "get_trial", "get_all_trials", "get_n_trials", "get_best_trial", "get_trial_params",
    "get_trial_user_attrs", "get_trial_system_attrs",
    *(name for name in PRIVATE_STORAGE_METHODS if name != "_get_trials"),  # read by columns: below, retried too
)
# Creating a trial is retried only when nothing was sent (`nothing_was_sent`): its commit may land just before the
# connection drops, and a blind retry would leave a second RUNNING trial that no worker runs.
_CREATE_METHODS = ("create_new_trial", PRIVATE_CREATE_METHOD)
_outermost = threading.local()


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage whose calls ride through a restart of the database (see the module docstring)."""

    def set_trial_state_values(self, trial_id: int, state: optuna.trial.TrialState, values=None) -> bool:
        attempts = []

        def set_state() -> bool:
            attempts.append(None)
            try:
                return optuna.storages.RDBStorage.set_trial_state_values(self, trial_id, state, values)
            except optuna.exceptions.UpdateFinishedTrialError:
                # An earlier attempt committed before its connection dropped: the state is already stored.
                if len(attempts) > 1 and optuna.storages.RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return self._retried("set_trial_state_values", set_state)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self._retried("record_heartbeat", lambda: optuna.storages.RDBStorage.record_heartbeat(self, trial_id))
        except Exception as error:  # raising would end Optuna's heartbeat thread, and the trial's heartbeats
            log.warning(
                "storage %s: heartbeat of trial id %d not recorded (%s); the next beat tries again",
                redact_url(self.url), trial_id, describe_storage_error(error, self.url),
            )

    def _get_trials(self, study_id: int, states, included_trial_ids: set[int], trial_id_greater_than: int):
        """Optuna's read of a study's trials (every `get_all_trials`, the trial cache's reads), by columns: see
        `read_trials_as_optuna`."""
        return self._retried("_get_trials", lambda: read_trials_as_optuna(
            self.engine, study_id, states, included_trial_ids, trial_id_greater_than))

    def _retried(self, name: str, call: Callable[[], T], retry_if: Callable[[BaseException], bool] = is_transient) -> T:
        if getattr(_outermost, "active", False):
            return call()
        _outermost.active = True
        try:
            return call_with_retries(self.url, name, call, retry_if=retry_if)
        finally:
            _outermost.active = False


def _retrying(name: str, retry_if: Callable[[BaseException], bool] = is_transient) -> Callable[..., Any]:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        # looked up at each call, as the overrides above do: what RDBStorage has then is what runs
        return self._retried(name, lambda: getattr(optuna.storages.RDBStorage, name)(self, *args, **kwargs), retry_if)

    return call


for _name in _RETRIED_METHODS:
    setattr(RetryingRDBStorage, _name, _retrying(_name))
for _name in _CREATE_METHODS:
    setattr(RetryingRDBStorage, _name, _retrying(_name, retry_if=nothing_was_sent))
