"""The study-wide slot lock: one worker at a time between "target reached?" and "trial created"."""

from __future__ import annotations

import threading

import pytest

from sweeper.storage import TrialSlotLock


def _excludes_a_second_holder(url: str, study_name: str) -> None:
    first, second = TrialSlotLock(url, study_name), TrialSlotLock(url, study_name)
    other_study = TrialSlotLock(url, f"{study_name}-other")
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
