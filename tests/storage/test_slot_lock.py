"""The study-wide slot lock: one worker at a time between "target reached?" and "trial created"."""

from __future__ import annotations

import threading

import pytest

from sweeper.storage import TrialSlotLock


def _excludes_a_second_holder(url: str, study_name: str, engine=None) -> None:
    first, second = TrialSlotLock(url, study_name, engine), TrialSlotLock(url, study_name, engine)
    other_study = TrialSlotLock(url, f"{study_name}-other", engine)
    got_it = threading.Event()

    def take_second() -> None:
        second.acquire()
        got_it.set()

    first.acquire()
    waiter = threading.Thread(target=take_second, daemon=True)
    waiter.start()
    assert not got_it.wait(1.0)  # blocked while the first holds the lock
    other_study.acquire()  # another study's workers are not held up
    other_study.close()
    first.release()
    first.release()  # idempotent
    assert got_it.wait(10.0)
    second.close()
    first.close()


def test_sqlite_lock_excludes_a_second_worker(tmp_path, unique_name):
    _excludes_a_second_holder(f"sqlite:///{tmp_path / 'study.db'}", unique_name)


@pytest.mark.postgres
def test_postgresql_lock_excludes_a_second_worker(postgres_url, unique_name):
    _excludes_a_second_holder(postgres_url, unique_name)


@pytest.mark.postgres
def test_postgresql_locks_from_one_engine_exclude_each_other(postgres_url, unique_name):
    """A packed worker's slots take their locks from the worker's one engine (`Storage`): they still exclude each
    other, and a released lock is not kept by a pooled session."""
    from sweeper.storage import Storage

    with Storage.open(postgres_url, heartbeat_interval_s=None) as storage:
        _excludes_a_second_holder(storage.url, unique_name, storage.engine)
        elsewhere = TrialSlotLock(storage.url, unique_name)  # another process's lock, on its own engine
        elsewhere.acquire()  # would block for good if a pooled connection still held the lock
        elsewhere.close()
