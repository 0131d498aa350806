"""The study database as one command holds it: opened once, at the edge, and passed down.

A command that ran trials and then read them back used to resolve the URL, check it and open an engine at every
step (a `sweeper sweep` made 7 engines, `sweeper analyze` 3). A `Storage` is opened once per command, checked as it
opens, and carries everything a step needs: the resolved URL and its redacted form for messages, Optuna's storage
(every call riding through a database restart, see `_retry.py`), the curves table on the same engine, and the
trial slot lock's connections from that engine too: one engine per process.
"""

from __future__ import annotations

import optuna

from ._curves import CurveStore
from ._rdb import open_storage, reading_storage
from ._reachable import check_sqlite_file
from ._url import redact_url, resolve_storage_url


class Storage:
    """`Storage.open(url, ...)` to run trials (creates the database where missing, heartbeats on),
    `Storage.for_reading(url)` to read a stored study (never creates a database file). Close it, or use it as a
    context manager."""

    def __init__(self, optuna_storage: optuna.storages.RDBStorage) -> None:
        self.optuna = optuna_storage
        self.url: str = optuna_storage.url  # resolved: every worker opens the same database
        self._curves: CurveStore | None = None

    @classmethod
    def open(
        cls,
        url: str,
        heartbeat_interval_s: int | None = 30,
        grace_period_s: int | None = None,
        max_retry: int = 1,
        existing: bool = False,
    ) -> Storage:
        """For running trials: see `open_storage` for the heartbeat settings. An unreachable or unwritable storage is
        a `ConfigError` naming the fix; so is a missing SQLite file with `existing` (a command that works on a
        stored study, which must not leave an empty database behind)."""
        resolved = resolve_storage_url(url)
        if existing:
            check_sqlite_file(resolved, writable=False)
        return cls(open_storage(resolved, heartbeat_interval_s, grace_period_s, max_retry))

    @classmethod
    def for_reading(cls, url: str, retry_s: float = 0.0) -> Storage:
        """For reading a stored study: see `reading_storage`."""
        return cls(reading_storage(url, retry_s))

    @property
    def engine(self):
        return self.optuna.engine

    @property
    def redacted(self) -> str:
        """The URL with any password hidden: the only form that goes into a message or a file."""
        return redact_url(self.url)

    @property
    def curves(self) -> CurveStore:
        """The curves table, on this storage's engine."""
        if self._curves is None:
            self._curves = CurveStore(self.url, engine=self.engine)
        return self._curves

    def study_names(self) -> set[str]:
        # the studies alone: Optuna's study summaries read every trial of every study (14 s at 10,000 trials)
        return {study.study_name for study in self.optuna.get_all_studies()}

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

