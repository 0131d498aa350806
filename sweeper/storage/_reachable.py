"""Is the storage there? One connection at the edge of a command, its failure told as the fix a person makes."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from sweeper.config import ConfigError

from ._retry import call_with_retries
from ._url import driver_message, engine_options, redact_url, resolve_storage_url, storage_hint


def check_storage_reachable(url: str, timeout_s: int = 5, writable: bool = True, retry_s: float = 0.0) -> None:
    """Connect once; an unreachable host, a refused login, a missing database, a file that is no SQLite database,
    with `writable` a read-only SQLite location, without it a missing SQLite file, becomes a `ConfigError`.

    With `retry_s`, a lost connection or a lock is retried that long first (see `_retry.py`): for callers that know
    the storage worked a moment ago, such as a sweep's closing report, where an outage is a restart, not a typo."""
    resolved = resolve_storage_url(url)
    options = engine_options(resolved)
    is_sqlite = make_url(resolved).get_backend_name() == "sqlite"
    if is_sqlite and writable:
        _check_sqlite_writable(resolved)
    elif is_sqlite and not Path(make_url(resolved).database).exists():  # reading would create an empty database
        raise ConfigError(
            f"storage {redact_url(resolved)!r}: no such file. Fix: check the path, or run `sweeper sweep` to create it"
        )
    if not is_sqlite:
        options["connect_args"] = {"connect_timeout": timeout_s}
    engine = sqlalchemy.create_engine(resolved, **options)

    def connect() -> None:
        with engine.connect() as connection:
            # `select 1` never reads an SQLite file; the schema version is in its header
            connection.execute(sqlalchemy.text("pragma schema_version" if is_sqlite else "select 1"))

    try:
        call_with_retries(resolved, "connecting", connect, retry_s=retry_s)
    except sqlalchemy.exc.DBAPIError as error:
        raise ConfigError(
            f"cannot open storage {redact_url(resolved)!r}: {driver_message(error, resolved)}. "
            f"{storage_hint(resolved)}"
        ) from None
    finally:
        engine.dispose()


def _check_sqlite_writable(url: str) -> None:
    # os.access sees a read-only file system even for root, who ignores file modes (and then can write anyway)
    path = Path(make_url(url).database)
    for target in ([path] if path.exists() else []) + [path.parent]:
        if not os.access(target, os.W_OK):
            raise ConfigError(
                f"storage {redact_url(url)!r}: {target} is not writable, so no trial could be stored. "
                "Fix: make it writable, or choose another location, e.g. --storage sqlite:///runs/study.db"
            )
