"""Optuna's RDB storage with heartbeats, so a trial whose worker died is failed and queued again."""

from __future__ import annotations

import time
import warnings

import optuna
import sqlalchemy
from optuna.trial import TrialState

from sweeper.config import ConfigError

from ._retry import RetryingRDBStorage, call_with_retries
from ._optuna_internals import HEARTBEAT_TABLE, rdb_storage, trial_id
from ._reachable import check_sqlite_file, connect_errors_explained
from ._url import engine_options, resolve_storage_url


def open_storage(
    url: str,
    heartbeat_interval_s: int | None = 30,
    grace_period_s: int | None = None,
    max_retry: int = 1,
) -> optuna.storages.RDBStorage:
    """Open (creating where missing) Optuna's tables in the database at `url`. The curves table is created by the
    first `CurveStore` on it (`Storage.curves`): a command refused before it trains adds no table.

    A running trial whose heartbeat is older than `grace_period_s` (default: twice the interval) is failed the next
    time any worker asks for a trial, and a copy with the same parameters is queued as WAITING, at most `max_retry`
    times per original trial. `heartbeat_interval_s=None` turns heartbeats off.

    Every storage call rides through a database restart: see `_retry.py`.

    Heartbeats are sent only while `Study.optimize` runs the objective; with `Study.ask`/`Study.tell` no heartbeat
    is ever recorded and such trials are never found stale.
    """
    _check_heartbeat_settings(heartbeat_interval_s, grace_period_s, max_retry)
    resolved = resolve_storage_url(url)
    check_sqlite_file(resolved, writable=True)
    with warnings.catch_warnings(), connect_errors_explained(resolved):
        # Heartbeats are experimental in Optuna; we opt in knowingly, so do not warn every worker.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        heartbeat_settings = {}
        if heartbeat_interval_s is not None:
            heartbeat_settings = {
                "heartbeat_interval": heartbeat_interval_s,
                "grace_period": grace_period_s,
                # Fires for heartbeat-stale trials only; `RetryFailedTrialCallback` is its deprecated alias and
                # `failed_trial_callback` the deprecated argument name (Optuna 4.9+).
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry),
            }
        storage = _created_once(lambda: RetryingRDBStorage(resolved, engine_kwargs=engine_options(resolved),
                                                           **heartbeat_settings))
    return storage


SCHEMA_RACE_ATTEMPTS = 20


def _created_once(create):
    """Optuna creates its tables and version row on first open; two processes opening a new database at once (a
    `sweep` and a `worker` started together) race there, and the loser's insert or CREATE fails. Its schema is then
    being (or has been) created by the winner: open again."""
    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            return create()
        except sqlalchemy.exc.DBAPIError as error:
            raced = isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error.orig)
            if not raced or attempt + 1 == SCHEMA_RACE_ATTEMPTS:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def reading_storage(url: str, retry_s: float = 0.0) -> optuna.storages.RDBStorage:
    """Optuna's storage at `url` for reading a study (analysis, report, status); never creates a SQLite file. A
    server that does not answer is a `ConfigError` at once, or after `retry_s` seconds of retries (a sweep's
    hand-off: a server that went away during the sweep is restarting); later calls ride through a restart as every
    call does."""
    resolved = resolve_storage_url(url)
    check_sqlite_file(resolved, writable=False)
    with connect_errors_explained(resolved):
        return call_with_retries(
            resolved,
            "opening the storage",
            lambda: RetryingRDBStorage(resolved, engine_kwargs=engine_options(resolved)),
            retry_s=retry_s,
        )


def beating_trials(study: optuna.Study) -> list[int]:
    """Numbers of the study's RUNNING trials that have sent a heartbeat, so will be found stale if their worker dies.
    A RUNNING trial that never beat (asked outside `optimize`, or its worker died before the first beat) is left out:
    waiting for it would never end."""
    running = {trial_id(t): t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    query = sqlalchemy.text(f"SELECT trial_id FROM {HEARTBEAT_TABLE} WHERE trial_id IN :ids").bindparams(
        sqlalchemy.bindparam("ids", expanding=True)
    )

    rdb = rdb_storage(study)

    def read_beating_ids() -> list[int]:
        with rdb.engine.connect() as connection:
            return list(connection.execute(query, {"ids": list(running)}).scalars())

    beating = call_with_retries(rdb.url, "reading heartbeats", read_beating_ids)
    return sorted(running[trial_id] for trial_id in beating)


def time_silent_trials(study: optuna.Study) -> list[int]:
    """Give each RUNNING trial that never beat a heartbeat now (the database's clock), so that Optuna's stale check
    fails it one grace period later unless its worker beats by then; returns their numbers. Every trial sweeper
    runs beats from its first moment, so one without a heartbeat is one whose worker died before the first beat or
    whose first beat failed (a full disk, a database away): it would otherwise stay RUNNING, counted toward the
    target and never run again. A live worker's next beat takes the row over (a beat that meets it is retried)."""
    rdb = rdb_storage(study)
    if rdb.get_heartbeat_interval() is None:
        return []
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    beating = set(beating_trials(study))
    silent = [trial for trial in running if trial.number not in beating]
    for trial in silent:
        rdb.record_heartbeat(trial_id(trial))  # RetryingRDBStorage's: a failure is logged, never raised
    return [trial.number for trial in silent]


def _check_heartbeat_settings(heartbeat_interval_s: int | None, grace_period_s: int | None, max_retry: int) -> None:
    if heartbeat_interval_s is not None and heartbeat_interval_s < 1:
        raise ConfigError(f"heartbeat_interval_s={heartbeat_interval_s}: use a whole number of seconds >= 1, or None")
    if grace_period_s is not None and heartbeat_interval_s is None:
        raise ConfigError(f"grace_period_s={grace_period_s} needs heartbeats: set heartbeat_interval_s as well")
    if grace_period_s is not None and heartbeat_interval_s is not None and grace_period_s <= heartbeat_interval_s:
        raise ConfigError(
            f"grace_period_s={grace_period_s} with heartbeat_interval_s={heartbeat_interval_s}: the grace period must "
            "exceed the heartbeat interval, or a healthy trial is failed between two heartbeats"
        )
    if max_retry < 0:
        raise ConfigError(f"max_retry={max_retry}: use 0 (never retry) or more")
