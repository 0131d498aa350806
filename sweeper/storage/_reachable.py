"""Is the storage there? Checked where a command first connects, its failure told as the fix a person makes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from sweeper.config import ConfigError

from ._retry import call_with_retries
from ._url import driver_message, engine_options, redact_url, resolve_storage_url, storage_hint


def check_storage_reachable(url: str, timeout_s: int = 5, writable: bool = True) -> None:
    """Connect once and let go: for a command that does not open the storage itself, such as `launch slurm`, which
    checks that the nodes will find it. An unreachable host, a refused login, a missing database, a file that is no
    SQLite database, with `writable` a read-only SQLite location, without it a missing SQLite file, becomes a
    `ConfigError`. (Commands that open the storage get the same checks from `open_storage`/`reading_storage`.)"""
    resolved = resolve_storage_url(url)
    options = engine_options(resolved)
    is_sqlite = check_sqlite_file(resolved, writable)
    if not is_sqlite:
        options["connect_args"] = {"connect_timeout": timeout_s}
    engine = sqlalchemy.create_engine(resolved, **options)

    def connect() -> None:
        with engine.connect() as connection:
            # `select 1` never reads an SQLite file; the schema version is in its header
            connection.execute(sqlalchemy.text("pragma schema_version" if is_sqlite else "select 1"))

    try:
        with connect_errors_explained(resolved):
            call_with_retries(resolved, "connecting", connect, retry_s=0.0)
    finally:
        engine.dispose()


def check_sqlite_file(url: str, writable: bool) -> bool:
    """For a SQLite URL (returns True): with `writable`, that the file and its folder can be written; without it,
    that the file exists, since reading would create an empty database. Checked before anything connects."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    path = Path(parsed.database)
    if writable:
        # os.access sees a read-only file system even for root, who ignores file modes (and then can write anyway)
        for target in ([path] if path.exists() else []) + [path.parent]:
            if not os.access(target, os.W_OK):
                raise ConfigError(
                    f"storage {redact_url(url)!r}: {target} is not writable, so no trial could be stored. "
                    "Fix: make it writable, or choose another location, e.g. --storage sqlite:///runs/study.db"
                )
    elif not path.exists():
        raise ConfigError(
            f"storage {redact_url(url)!r}: no such file. Fix: check the path, or run `sweeper sweep` to create it"
        )
    return True


@contextmanager
def connect_errors_explained(url: str) -> Iterator[None]:
    """A database error while first connecting (nothing of the study was read or written yet) becomes a
    `ConfigError` naming the storage and the fix."""
    try:
        yield
    except sqlalchemy.exc.DBAPIError as error:
        raise ConfigError(
            f"cannot open storage {redact_url(url)!r}: {driver_message(error, url)}. {storage_hint(url)}"
        ) from None
