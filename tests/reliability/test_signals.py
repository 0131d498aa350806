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
    # the parent-death signal is SIGTERM: each worker stored its trial as interrupted and queued a copy for the resume
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert {t.user_attrs.get("failure_reason") for t in interrupted} == {"interrupted"} and len(interrupted) == 2
    copies = [t for t in trials if t.state == TrialState.WAITING]
    assert sorted(t.system_attrs["failed_trial"] for t in copies) == sorted(t.number for t in interrupted)


@pytest.mark.slow
def test_sigterm_to_a_worker_queues_its_trial_again_with_the_same_parameters(write_fast_study):
    from sweeper.sweep import status_rows

    study_file = write_fast_study(n_trials=2, training={"orpo.max_steps": 400})
    spec = load_study_spec(study_file)
    worker = _sweeper("worker", str(study_file), "--no-progress", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not (_study_exists(spec) and optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials(
            deepcopy=False, states=(TrialState.RUNNING,))):
        assert time.monotonic() < deadline and worker.poll() is None, "no trial ever ran"
        time.sleep(0.5)
    worker.send_signal(signal.SIGTERM)  # as `scancel`, a preemption or a pod's eviction stops a worker
    _, stderr = worker.communicate(timeout=120)
    assert worker.returncode == 128 + signal.SIGTERM, stderr
    assert "trial 0 interrupted by SIGTERM: queued again as trial 1" in stderr
    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    failed, copy = study.get_trials()
    assert (failed.state, copy.state) == (TrialState.FAIL, TrialState.WAITING)
    assert copy.params == failed.params and copy.system_attrs["failed_trial"] == 0
    assert "failure_reason" not in copy.user_attrs  # the copy runs as a new trial, not as a failed one
    rows = status_rows(study)
    assert rows[0]["failure_reason"] == "interrupted (re-run as trial 1)"


def test_only_an_interrupted_trial_is_queued_again(tmp_path):
    """A trial that failed on its own is not re-run, and a copy is made once."""
    from sweeper.sweep._worker import requeue_stopped_trial

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", directions=["minimize", "maximize"])
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for reason in ("interrupted", "non-finite objective"):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params={"x": 0.5}, distributions=distributions,
                                                  user_attrs={"failure_reason": reason}))
    assert requeue_stopped_trial(study, 1) is None  # a failed run is not re-run
    assert requeue_stopped_trial(study, 0) == 2
    assert requeue_stopped_trial(study, 2) is None  # the copy is WAITING, not failed
    copy = study.get_trials()[2]
    assert copy.state == TrialState.WAITING and copy.params == {"x": 0.5}
    assert copy.system_attrs["retry_history"] == [0]

