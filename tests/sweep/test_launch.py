"""Real worker processes: `sweeper sweep --workers 3` on PostgreSQL and SQLite, and Ctrl-C on a running sweep."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweeper.metrics import ORPO_METRICS
from sweeper.storage import CurveStore, open_storage
from sweeper.study import load_study_spec
from sweeper.sweep import open_study

pytestmark = pytest.mark.integration


def _sweeper(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeper.cli", *args], text=True, **popen)


def _check_every_trial_accounted_for(study_file, n_trials: int) -> None:
    spec = load_study_spec(study_file)
    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    trials = study.get_trials()
    assert len(trials) == n_trials  # none lost, none run twice
    assert sorted(t.number for t in trials) == list(range(n_trials))
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.FAIL}
    assert all(t.user_attrs.get("failure_reason") for t in trials if t.state == TrialState.FAIL)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= n_trials - 1
    with CurveStore(spec.storage) as curves:
        rows = curves.read(spec.study_name)
    for trial in complete:
        stored = {(row["split"], row["metric"]) for row in rows if row["trial_number"] == trial.number}
        assert stored >= {(split, metric) for split in ("train", "eval") for metric in ORPO_METRICS}
    assert {row["trial_number"] for row in rows} <= {t.number for t in trials}


@pytest.mark.postgres
def test_three_workers_share_a_postgresql_study(write_fast_study, postgres_url):
    study_file = write_fast_study(n_trials=5, storage=postgres_url)
    sweep = _sweeper("sweep", str(study_file), "--workers", "3")
    assert sweep.wait(timeout=900) == 0
    _check_every_trial_accounted_for(study_file, 5)


def test_three_workers_share_a_sqlite_study(write_fast_study):
    study_file = write_fast_study(n_trials=5)
    sweep = _sweeper("sweep", str(study_file), "--workers", "3")
    assert sweep.wait(timeout=900) == 0
    _check_every_trial_accounted_for(study_file, 5)


def _wait_for_running_trial(spec, after_complete: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if len(complete) >= after_complete and running:
                return
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.5)
    raise AssertionError("no trial started running")


def _wait_for_training_to_start(spec, timeout_s: float = 600) -> None:
    """Until the running trial has stored a curve point: its first evaluation (at step 0) is in the training loop."""
    deadline = time.monotonic() + timeout_s
    with CurveStore(spec.storage) as curves:
        while time.monotonic() < deadline:
            study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if running and curves.read(spec.study_name, trial_number=running[-1].number):
                return
            time.sleep(0.2)
    raise AssertionError("the running trial never reached its training loop")


def _interrupt_a_running_trial(study_file, spec, after_complete: int) -> str:
    """Ctrl-C to `sweeper sweep` a few seconds into the trial after `after_complete` finished ones; its stderr."""
    sweep = _sweeper("sweep", str(study_file), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for_running_trial(spec, after_complete)
    _wait_for_training_to_start(spec)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, stderr
    return stderr


def test_ctrl_c_records_the_running_trial_as_interrupted_and_a_rerun_resumes(write_fast_study):
    # long enough a trial that the interrupt lands in the middle of training
    study_file = write_fast_study(n_trials=3, training={"orpo.max_steps": 400})
    spec = load_study_spec(study_file)
    stderr = _interrupt_a_running_trial(study_file, spec, after_complete=0)
    assert "interrupted" in stderr and "Traceback" not in stderr

    study = optuna.load_study(study_name=spec.study_name, storage=spec.storage)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["failure_reason"] == "interrupted"
    # points go to storage at each evaluation (pruning compares them): what was logged after the last one is not kept
    with CurveStore(spec.storage) as curves:
        rows = curves.read(spec.study_name)
    assert {row["trial_number"] for row in rows} <= {trial.number}
    eval_steps = {row["step"] for row in rows if row["split"] == "eval"}
    assert all(row["step"] <= max(eval_steps) for row in rows), rows


def test_an_interrupted_trial_does_not_count_toward_the_target(write_fast_study):
    # the first trial is short, the second long enough that the interrupt surely lands in it, not after the sweep
    study_file = write_fast_study(n_trials=2)
    fields = yaml.safe_load(study_file.read_text())
    fields["space"]["orpo.max_steps"] = {"choice": [8, 400]}
    study_file.write_text(yaml.safe_dump(fields, sort_keys=False))
    spec = load_study_spec(study_file)
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    for max_steps in (8, 400, 8):  # the third runs when the sweep resumes
        study.enqueue_trial({"max_steps": max_steps})
    _interrupt_a_running_trial(study_file, spec, after_complete=1)

    resumed = _sweeper("sweep", str(study_file), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert resumed.wait(timeout=600) == 0
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    states = [(t.state, t.user_attrs.get("failure_reason")) for t in trials]
    assert states == [
        (TrialState.COMPLETE, None),
        (TrialState.FAIL, "interrupted"),
        (TrialState.COMPLETE, None),
    ]
    finished = [tuple(sorted(t.params.items())) for t in trials if t.state == TrialState.COMPLETE]
    assert len(set(finished)) == len(finished), finished  # the resumed sampler did not replay trial 0


@pytest.mark.slow
def test_a_sweep_and_a_separately_started_worker_never_draw_the_same_configuration(write_fast_study):
    # README's several-machines recipe: `sweep` here, `worker` there, same study file and seed, no worker index
    study_file = write_fast_study(n_trials=4)
    sweep = _sweeper("sweep", str(study_file), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = _sweeper("worker", str(study_file), "--no-progress", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert worker.wait(timeout=900) == 0, worker.stderr.read()
    assert sweep.wait(timeout=900) == 0, sweep.stderr.read()
    spec = load_study_spec(study_file)
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials), [t.params for t in trials]


STUCK_WORKER = """
import signal, sys
from sweeper.sweep import dump_stack_on_signal
dump_stack_on_signal()
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a worker that never gets to record its trial
print("ready", flush=True)
sys.stdin.read()
"""


def test_a_worker_stuck_after_the_stop_signal_has_its_stack_dumped_and_is_killed(capfd):
    from sweeper.sweep._launch import _wait_or_kill

    stuck = subprocess.Popen(
        [sys.executable, "-c", STUCK_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    assert stuck.stdout.readline() == "ready\n"
    stuck.send_signal(signal.SIGINT)
    _wait_or_kill([stuck], grace_s=1.0)
    assert stuck.returncode == -signal.SIGKILL
    assert "did not stop within 1 s of the stop signal" in capfd.readouterr().err
    stack = stuck.stderr.read()
    assert "Current thread" in stack or "Thread 0x" in stack, stack
    stuck.stdin.close()
