"""`sweeper launch slurm` on a real SLURM (tests/launch/conftest.py): a 2-worker sweep on the real PostgreSQL reaches
its target although one worker's job is cancelled mid-trial, with no trial lost or doubled, and the storage
password appears in no script, log, job record or job environment."""

from __future__ import annotations

import os
import subprocess
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.study import load_study_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]

# PostgreSQL here trusts local connections and ignores a password, so a made-up one travels the whole way.
SECRET = "Sl-urm-s3cret-91"


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@", 1)


def _queued(job: str, environment: dict) -> list[str]:
    shown = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], capture_output=True, text=True, env=environment)
    return shown.stdout.split("\n") if shown.stdout.strip() else []


def _await(condition, what: str, timeout_s: float = 600):
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return value


def test_a_cancelled_worker_job_loses_no_trial_and_the_report_job_runs_after(
    slurm_cluster, postgres_url, write_fast_study, tmp_path, monkeypatch
):
    from sweeper.cli import main

    url = _with_password(postgres_url)
    study_file = write_fast_study(n_trials=6, storage="sqlite:///unused.db", training={"orpo.max_steps": 24})
    spec = load_study_spec(study_file, storage=url)
    environment = {**os.environ, **slurm_cluster}
    for key, value in slurm_cluster.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SWEEPER_TEST_SLURM_URL", url)
    folder = tmp_path / "slurm"
    code = main([
        "launch", "slurm", str(study_file), "--storage-env", "SWEEPER_TEST_SLURM_URL", "--nodes", "2",
        "--cpus-per-worker", "1", "--heartbeat-interval", "2", "--grace-period", "20", "-o", str(folder),
        "--setup", f'env > "{folder}/logs/env-$SLURM_JOB_ID.txt"',  # what each job's environment holds
    ])
    assert code == 0
    array_job = _await(lambda: _queued_array(environment), "the worker array job")

    # both workers in a trial, then one worker's job cancelled: its trial is interrupted and queued again
    def both_running():
        try:
            study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
        except KeyError:  # the first worker has not created it yet
            return False
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) == 2

    _await(both_running, "two trials running at once")
    subprocess.run(["scancel", f"{array_job}_1"], env=environment, check=True)
    _await(lambda: not [line for line in _all_jobs(environment)], "every job, the report job too, to end", 900)

    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    interrupted = [t for t in trials if t.user_attrs.get("failure_reason") == "interrupted"]
    assert len(complete) == 6, [(t.number, t.state.name, t.user_attrs.get("failure_reason")) for t in trials]
    assert len(interrupted) == 1, "the cancelled worker's trial was not stored as interrupted"
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    configurations = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(configurations)) == 6, "a configuration was trained twice"
    assert tuple(sorted(interrupted[0].params.items())) in configurations, "the interrupted trial was never re-run"

    # the report job ran once the workers had ended
    assert (folder / "report.html").stat().st_size > 0
    assert list((folder / "export").glob("trial-*.yaml"))
    # the password: in no file the launch or the jobs wrote, not in the jobs' environment
    written = [path for path in folder.rglob("*") if path.is_file() and path.name != "storage-url"]
    assert any(path.name.startswith("worker-") for path in written) and any("env-" in path.name for path in written)
    for path in written:
        assert SECRET not in path.read_text(errors="replace"), f"the password is in {path}"
    assert (folder / "storage-url").stat().st_mode & 0o777 == 0o600


def _queued_array(environment: dict) -> str | None:
    for line in _all_jobs(environment):
        job, name = line.split()[:2]
        if "_" in job and not name.endswith("-report"):
            return job.split("_")[0]
    return None


def _all_jobs(environment: dict) -> list[str]:
    shown = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True, env=environment)
    return [line for line in shown.stdout.splitlines() if line.strip()]
