"""Optuna's RDB storage with heartbeats, so a trial whose worker died is failed and queued again."""

from __future__ import annotations

import warnings

import optuna

from sweeper.config import ConfigError

from ._curves import create_curves_table
from ._url import check_storage_reachable, engine_options, resolve_storage_url


def open_storage(
    url: str,
    heartbeat_interval_s: int | None = 30,
    grace_period_s: int | None = None,
    max_retry: int = 1,
) -> optuna.storages.RDBStorage:
    """Open (creating where missing) Optuna's tables and the curves table in the database at `url`.

    A running trial whose heartbeat is older than `grace_period_s` (default: twice the interval) is failed the next
    time any worker asks for a trial, and a copy with the same parameters is queued as WAITING, at most `max_retry`
    times per original trial. `heartbeat_interval_s=None` turns heartbeats off.

    Heartbeats are sent only while `Study.optimize` runs the objective; with `Study.ask`/`Study.tell` no heartbeat
    is ever recorded and such trials are never found stale.
    """
    _check_heartbeat_settings(heartbeat_interval_s, grace_period_s, max_retry)
    resolved = resolve_storage_url(url)
    check_storage_reachable(resolved)
    with warnings.catch_warnings():
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
        storage = optuna.storages.RDBStorage(resolved, engine_kwargs=engine_options(resolved), **heartbeat_settings)
    create_curves_table(storage.engine)
    return storage


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
