"""A study-wide lock that makes "is the target reached? then start a trial" one step across workers.

Without it, workers that check the trial count at the same moment all see room for one more trial and the study
overshoots its target. The lock is held from the check until the new trial exists in storage (and so counts).
PostgreSQL: a session-level advisory lock, released by the server if the worker dies. SQLite (one machine): an
exclusive `flock` on a file beside the database, released by the kernel if the worker dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from ._retry import call_with_retries
from ._url import engine_options, resolve_storage_url

log = logging.getLogger(__name__)


def _advisory_key(study_name: str) -> int:
    # pg_advisory_lock takes a signed 64-bit key
    return int.from_bytes(hashlib.sha256(f"sweeper-slot:{study_name}".encode()).digest()[:8], "big", signed=True)


class TrialSlotLock:
    """`acquire()` blocks until this worker may check the target and start a trial; `release()` is idempotent."""

    def __init__(self, url: str, study_name: str, engine: sqlalchemy.Engine | None = None) -> None:
        """`engine`: the storage's own (see `Storage`), whose connections the lock takes out of the pool for good, so
        that closing one ends its session and the lock with it; without it, the lock makes its own engine."""
        resolved = resolve_storage_url(url)
        parsed = make_url(resolved)
        self._key = _advisory_key(study_name)
        self._held = False
        self._engine = self._connection = self._file = None
        self._owns_engine = False
        self._lock_path: Path | None = None
        if parsed.get_backend_name() == "postgresql":
            self._owns_engine = engine is None
            self._engine = engine or sqlalchemy.create_engine(resolved, poolclass=sqlalchemy.NullPool,
                                                              **engine_options(resolved))
        elif parsed.get_backend_name() == "sqlite":
            self._lock_path = Path(f"{parsed.database}.{hashlib.sha256(study_name.encode()).hexdigest()[:12]}.lock")

    def acquire(self) -> None:
        if self._engine is not None:
            # rides through a database restart like every other storage call (see _retry.py)
            url = self._engine.url.render_as_string(hide_password=False)  # shown redacted, never as is
            call_with_retries(url, "taking the trial slot lock", self._lock_on_server, stop_waits=False)
        elif self._lock_path is not None:
            self._file = open(self._lock_path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        self._held = True

    def _lock_on_server(self) -> None:
        connection = self._engine.connect()
        # a session-level lock lives as long as its session: this connection is closed, never returned to a pool
        connection.detach()
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
            connection.commit()
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            if self._connection is not None:
                self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                self._connection.commit()
        except sqlalchemy.exc.DBAPIError as error:  # the server restarted: it dropped the lock with the session
            log.warning("slot lock: the database connection was lost (%s); the server released the lock", error.orig)
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
                self._file.close()
                self._file = None

    def close(self) -> None:
        self.release()
        if self._owns_engine:
            self._engine.dispose()
