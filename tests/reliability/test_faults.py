"""Fault drills through the real command line (real ORPO trials, real storage), each bounded in time and loopback
only. The drills live in bench/reliability.py, which prints the same counts for docs/reliability.md."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("reliability_drills", REPO_ROOT / "bench" / "reliability.py")
drills = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = drills  # dataclasses look their module up while the class is made
_spec.loader.exec_module(drills)

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_with_password(postgres_url: str) -> str:
    """The test server's URL with a password in it (trust authentication ignores it): it must never be printed."""
    return drills.postgres_url_with_password(postgres_url)


def _needs_root(what: str) -> None:
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        pytest.skip(f"{what} needs root")


def assert_nothing_lost(outcome) -> None:
    assert outcome.lost == 0, outcome
    assert outcome.doubled == 0, outcome
    assert outcome.extra == 0, outcome
    assert outcome.complete == outcome.target, outcome
    assert outcome.incomplete_curves == 0, outcome
    assert outcome.tracebacks == 0, outcome
    assert outcome.leaked_passwords == 0, outcome


@pytest.mark.timeout(900)
def test_killed_worker_trial_fails_within_grace_period_and_is_rerun(tmp_path, postgres_with_password):
    outcome = drills.kill_worker(tmp_path, postgres_with_password)
    drills.delete_drill_study(outcome)  # the counts are taken; the shared database is left clean
    assert_nothing_lost(outcome)
    assert outcome.failed == 1 and outcome.retried == 1, outcome
    assert outcome.exit_codes == [0], outcome  # the study reached its target: the other worker re-ran the trial
    assert outcome.facts["kill reported"], outcome
    assert outcome.facts["worker processes"] == 2 and len(outcome.facts["killed trials"]) == 1, outcome
    # grace period 4 s, heartbeat every 1 s, the launcher looks every 2 s
    assert outcome.facts["seconds from kill to FAIL"] <= 4 + 1 + 2 + 2, outcome
    assert outcome.facts["copies have its parameters"], outcome
    assert outcome.facts["finished trials changed"] == [], outcome
    assert outcome.facts["password in worker command lines"] == 0, outcome


@pytest.mark.timeout(900)
def test_worker_started_after_a_kill_reruns_the_dead_trial(tmp_path, postgres_with_password):
    outcome = drills.kill_lone_worker(tmp_path, postgres_with_password)
    drills.delete_drill_study(outcome)  # the counts are taken; the shared database is left clean
    assert_nothing_lost(outcome)
    assert outcome.facts["killed trial state"] == "FAIL", outcome
    assert len(outcome.facts["re-queued copies"]) == 1 and outcome.facts["copies have its parameters"], outcome
    assert outcome.facts["finished trials changed"] == [], outcome
    assert outcome.exit_codes[-1] == 0, outcome


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_workers_ride_through_a_postgres_restart(tmp_path, postgres_with_password):
    _needs_root("restarting PostgreSQL")
    if not shutil.which("pg_ctlcluster"):
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster")
    outcome = drills.postgres_restart(tmp_path, postgres_with_password)
    drills.delete_drill_study(outcome)  # the counts are taken; the shared database is left clean
    assert_nothing_lost(outcome)
    assert outcome.failed == 0, outcome
    assert outcome.exit_codes == [0], outcome
    assert sum("seconds the restart took" in fact for fact in outcome.facts) == 2, outcome


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_eight_workers_on_one_postgres_study(tmp_path, postgres_with_password):
    outcome = drills.many_workers(tmp_path, postgres_with_password, "postgres-8", n_workers=8, n_trials=8)
    drills.delete_drill_study(outcome)  # the counts are taken; the shared database is left clean
    assert_nothing_lost(outcome)
    assert outcome.failed == 0 and outcome.exit_codes == [0], outcome
    assert outcome.facts["storage errors printed"] == 0, outcome


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_eight_workers_on_one_sqlite_file_without_lock_errors(tmp_path):
    outcome = drills.many_workers(tmp_path, f"sqlite:///{tmp_path / 'study.db'}", "sqlite-8", n_workers=8, n_trials=8)
    assert_nothing_lost(outcome)
    assert outcome.failed == 0 and outcome.exit_codes == [0], outcome
    assert outcome.facts["'database is locked' printed"] == 0, outcome
    assert outcome.facts["storage errors printed"] == 0, outcome


@pytest.mark.timeout(900)
def test_read_only_storage_folder_is_refused_and_left_unchanged(tmp_path):
    _needs_root("a read-only bind mount")
    outcome = drills.read_only_folder(tmp_path)
    assert outcome.exit_codes == [0, 2], outcome
    assert "is not writable" in outcome.facts["message"] and "Fix:" in outcome.facts["message"], outcome
    assert outcome.facts["stored file unchanged"], outcome
    assert_nothing_lost(outcome)


@pytest.mark.timeout(900)
def test_full_disk_stops_the_sweep_clearly_and_a_resume_completes_it(tmp_path):
    _needs_root("mounting a small tmpfs")
    outcome = drills.disk_full(tmp_path)
    assert outcome.exit_codes == [1, 0], outcome
    message = outcome.facts["message"]
    # Where the full disk is met depends on timing: SQLite may reuse pages of its write-ahead log and store the
    # remaining trials, and then the report written beside it is what fails. Either way: one clear line saying what
    # is full, where, and what to do.
    if "database or disk is full" in message:
        assert "run the same command again to resume" in message, outcome
    else:
        assert message.startswith(f"error: {outcome.facts['hand-off folder']}"), outcome
        assert "No space left on device" in message, outcome
        assert "free disk space" in message and "run the same command again" in message, outcome
    assert outcome.facts["integrity_check after the fault"] == "ok", outcome
    assert outcome.facts["finished trials changed"] == [], outcome
    assert_nothing_lost(outcome)
