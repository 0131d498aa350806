"""Storage URLs: checked once at the edge, shown only with the password hidden."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, make_url

from sweeper.config import ConfigError, redact_secrets

# SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; the project depends on psycopg2 (psycopg2-binary).
POSTGRES_DRIVER = "postgresql+psycopg2"
POSTGRES_CONNECT_TIMEOUT_S = 10
# Concurrent SQLite workers wait this long for the write lock instead of failing with "database is locked".
SQLITE_LOCK_TIMEOUT_S = 60

_EXAMPLES = "use sqlite:///runs/sweep.db (a file) or postgresql://user:password@host:5432/database"


def redact_url(url: str | URL) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages, whatever its shape: a text
    is redacted as written, not as parsed (a password with an unencoded `@` parses as part of the host)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return redact_secrets(str(url))


def read_storage_file(path: str | Path) -> str:
    """The storage URL kept in a file (first non-blank line), which keeps a password off command lines, job scripts
    and logs. The file must be readable by its owner only: a URL other users can read is a shared password."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--storage-file {path}: no such file; write the storage URL into it (chmod 600)") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise ConfigError(f"--storage-file {path}: not a text file ({type(error).__name__}); give the file that "
                          "holds the storage URL") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"--storage-file {path}: other users can read it (mode {mode & 0o777:o}), and it holds the database "
            f"password. Fix: chmod 600 {path}"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"--storage-file {path}: the file is empty; write the storage URL into it")
    return lines[0]


def resolve_storage_url(url: str) -> str:
    """The URL every worker can open: SQLite files made absolute (parent folder created), PostgreSQL pinned to psycopg2.

    Relative SQLite paths are relative to the current working directory. In-memory SQLite is refused: workers in
    other processes could never see it.
    """
    try:
        parsed = make_url(url)
    except Exception as error:
        raise ConfigError(f"storage URL {redact_url(url)!r} cannot be parsed ({error}); {_EXAMPLES}") from None

    if parsed.drivername == "sqlite":
        return _resolve_sqlite(parsed)
    if parsed.drivername in ("postgresql", POSTGRES_DRIVER):
        if parsed.host and "@" in parsed.host:
            raise ConfigError(
                f"storage URL {redact_url(url)!r}: its password holds an `@`, which ends the password in a URL. "
                "Fix: write it percent-encoded, `@` as %40 (better: pass the URL with --storage-env VAR)"
            )
        if not parsed.database:
            raise ConfigError(
                f"storage URL {redact_url(parsed)!r} names no database; "
                "add one after the host, e.g. postgresql://user:password@host:5432/sweeps"
            )
        return parsed.set(drivername=POSTGRES_DRIVER).render_as_string(hide_password=False)
    raise ConfigError(
        f"storage URL {redact_url(parsed)!r} uses {parsed.drivername!r}, which sweeper does not support; {_EXAMPLES}"
    )


def _resolve_sqlite(parsed: URL) -> str:
    if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file::memory:"):
        raise ConfigError(
            f"storage URL {redact_url(parsed)!r} is an in-memory SQLite database, which other worker processes "
            "cannot share; name a file instead, e.g. sqlite:///runs/sweep.db"
        )
    path = Path(parsed.database).expanduser().absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"storage URL {redact_url(parsed)!r}: cannot create the folder {str(path.parent)!r} ({error}); "
            "choose a writable location"
        ) from None
    return parsed.set(database=str(path)).render_as_string(hide_password=False)


class _WriteAheadLogConnection(sqlite3.Connection):
    """SQLite in write-ahead-log mode, synced at checkpoints instead of at every commit: a trial's ~50 small commits
    (Optuna writes each user attribute in its own) take about 1 ms each instead of about 20. A crashed process loses
    nothing it committed; a power cut may lose the last commits but never corrupts the file. Readers and the writer
    no longer block each other. Where the mode cannot be set (a read-only folder), SQLite's default mode stays."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.execute("PRAGMA journal_mode=WAL")
            self.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError:  # read-only, or not a database: the first real query reports it
            pass


def engine_options(url: str) -> dict[str, Any]:
    """`create_engine` keyword arguments for a resolved URL, shared by Optuna's storage and the curves table."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S, "factory": _WriteAheadLogConnection}}
    # pool_pre_ping replaces connections a server restart has closed, so long sweeps ride through it.
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}}


def driver_message(error: sqlalchemy.exc.DBAPIError, url: str) -> str:
    message = " ".join(str(error.orig).split())
    password = make_url(url).password
    # Drivers do not echo passwords today; this keeps it true if one ever does.
    return message.replace(str(password), "***") if password else message


def storage_hint(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "Check that the file's folder is writable and the file is an SQLite database."
    return (
        f"Check that PostgreSQL runs on {parsed.host or 'the local socket'}:{parsed.port or 5432}, "
        f"that user {parsed.username!r} may log in with that password, and that database {parsed.database!r} "
        f"exists (create it with: createdb {parsed.database})."
    )
