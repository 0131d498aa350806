"""Signals from outside: SIGTERM (timeout, systemd, container runtimes) stops `sweep --workers N` and every worker the
way Ctrl-C does, and workers never outlive a launcher killed outright (no orphans)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.study import load_study_spec

pytestmark = pytest.mark.integration


def _sweeper(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeper.cli", *args], text=True, **popen)


def _launched_workers(sweep: subprocess.Popen, spec, count: int) -> list:
    """The launcher's worker processes, once `count` trials run."""
    import psutil

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        study = optuna.load_study(study_name=spec.study_name, storage=spec.storage) if _study_exists(spec) else None
        if study and len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= count:
            return [child for child in psutil.Process(sweep.pid).children() if "worker" in child.cmdline()]
        time.sleep(0.5)
    raise AssertionError(f"{count} trials never ran at once")


def _study_exists(spec) -> bool:
    return spec.study_name in {s.study_name for s in optuna.get_all_study_summaries(spec.storage)}


@pytest.mark.slow
def test_sigterm_stops_the_launcher_and_every_worker_and_stores_their_trials_as_interrupted(write_fast_study):
    import psutil

    study_file = write_fast_study(n_trials=6, training={"orpo.max_steps": 400})
    spec = load_study_spec(study_file)
    sweep = _sweeper("sweep", str(study_file), "--workers", "2", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = _launched_workers(sweep, spec, count=2)
    assert len(workers) == 2
    sweep.send_signal(signal.SIGTERM)  # as `timeout`, systemd and container runtimes stop a process
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr
    psutil.wait_procs(workers, timeout=30)
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert [t.user_attrs.get("failure_reason") for t in trials] == ["interrupted", "interrupted"]


@pytest.mark.slow
def test_workers_stop_when_their_launcher_is_killed_outright(write_fast_study):
    import psutil

    study_file = write_fast_study(n_trials=6, training={"orpo.max_steps": 400})
    spec = load_study_spec(study_file)
    sweep = _sweeper("sweep", str(study_file), "--workers", "2", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = _launched_workers(sweep, spec, count=2)
    sweep.kill()  # SIGKILL: the launcher cannot pass anything on
    sweep.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, "workers outlived their launcher"
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert {t.user_attrs.get("failure_reason") for t in trials} == {"interrupted"}

