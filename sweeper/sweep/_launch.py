"""`sweeper sweep --workers N`: N worker processes on one storage, each pinned to its own GPU where GPUs exist."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..storage import Storage
from ..study import StudySpec
from ._identity import StudyInputs
from ._optuna_study import open_study
from ._signals import PARENT_PID_ENV, STACK_DUMP_SIGNAL, die_with_parent
from ._progress import ProgressLine
from ._worker import HeartbeatSettings, requeue_dead_workers_trials, storage_for, target_reached

# The storage URL reaches workers through their environment: a command line (with any password in the URL) is
# readable by every user of the machine, a process's environment only by its owner.
STORAGE_ENV = "SWEEPER_WORKER_STORAGE"
# After a stop signal a worker records its trial and exits in seconds; one still running this long after is stuck.
# It is sent STACK_DUMP_SIGNAL (its stack goes to the log), then killed: the heartbeat re-queues its trial.
WORKER_STOP_GRACE_S = 60.0


def visible_gpus() -> list[str]:
    """GPU ids a worker may be pinned to, honouring an existing CUDA_VISIBLE_DEVICES."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(index) for index in range(torch.cuda.device_count())]


def worker_environment(worker_index: int, n_workers: int, gpus: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[worker_index % len(gpus)]
    else:
        # CPU workers share the cores instead of each spawning a thread per core and thrashing
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n_workers))
    return env


def launch_workers(
    study_file: str | Path,
    spec: StudySpec,
    n_workers: int,
    heartbeat: HeartbeatSettings,
    inputs: StudyInputs | None = None,
    allow_changed_inputs: bool = False,
    storage: Storage | None = None,
) -> int:
    """Start the workers, show one progress line for all of them, and return an exit code: a worker's error code
    (the worst) if one failed; else 0 when the study reached its target, even if a worker was killed on the way (the
    others re-ran its trial), and 1 when a killed worker left the target unreached."""
    gpus = visible_gpus()
    if gpus and n_workers > len(gpus):
        print(f"warning: {n_workers} workers share {len(gpus)} GPU(s); each GPU runs several trials at once", file=sys.stderr)
    with storage_for(spec, heartbeat, storage) as opened:
        return _launch(study_file, spec, n_workers, heartbeat, gpus, inputs, allow_changed_inputs, opened)


def _launch(
    study_file: str | Path,
    spec: StudySpec,
    n_workers: int,
    heartbeat: HeartbeatSettings,
    gpus: list[str],
    inputs: StudyInputs | None,
    allow_changed_inputs: bool,
    storage: Storage,
) -> int:
    # create (or check and join) before the workers join; they then find the inputs this command recorded
    study = open_study(spec, storage.optuna, inputs, allow_changed_inputs)
    progress = ProgressLine(study, spec.n_trials)
    workers = []
    for index in range(n_workers):
        command = [
            sys.executable, "-m", "sweeper.cli", "worker", str(study_file),
            "--storage-env", STORAGE_ENV, "--no-progress",
            "--heartbeat-interval", str(heartbeat.interval_s), "--grace-period", str(heartbeat.grace_s),
        ]
        if spec.n_trials is not None:
            command += ["--n-trials", str(spec.n_trials)]
        if spec.timeout_s is not None:
            command += ["--timeout", str(spec.timeout_s)]
        command += ["--pack", str(spec.pack)]
        env = {**worker_environment(index, n_workers, gpus), STORAGE_ENV: storage.url, PARENT_PID_ENV: str(os.getpid())}
        # own session: a terminal's Ctrl-C reaches the launcher only, which passes one SIGINT on to each worker;
        # the parent-death signal stops a worker whose launcher was killed outright
        workers.append(subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=die_with_parent))
    try:
        while any(worker.poll() is None for worker in workers):
            # a dead worker's trial is failed and re-queued once its grace period is over, not a whole trial later
            requeue_dead_workers_trials(study)
            progress.show()
            time.sleep(2)
    except KeyboardInterrupt:
        # Ctrl-C, SIGTERM or SIGHUP reached the launcher: pass it on as one SIGINT per worker, each of which stores
        # its running trial as interrupted, and wait for them
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
        _wait_or_kill(workers, WORKER_STOP_GRACE_S)
        raise
    finally:
        progress.show(final=True)
    return _sweep_exit_code(workers, study, spec)


def _wait_or_kill(workers: list[subprocess.Popen], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for index, worker in enumerate(workers):
        try:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"warning: worker {index} (pid {worker.pid}) did not stop within {grace_s:.0f} s of the stop signal; "
                  "its stack follows in the log, and it is killed (its trial is re-queued once the heartbeat's grace "
                  "period is over)", file=sys.stderr)
            worker.send_signal(STACK_DUMP_SIGNAL)
            try:
                worker.wait(timeout=2)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _sweep_exit_code(workers: list[subprocess.Popen], study, spec: StudySpec) -> int:
    errors = [worker.returncode for worker in workers if worker.returncode > 0]
    if errors:
        return max(errors)
    killed = [index for index, worker in enumerate(workers) if worker.returncode < 0]
    for index in killed:
        print(f"warning: worker {index} was killed by signal {-workers[index].returncode}; its running trial was "
              "failed and queued again for the other workers", file=sys.stderr)
    if killed and spec.n_trials is not None and not target_reached(study, spec):
        print("error: killed workers left the study short of its target; run the same command again to resume",
              file=sys.stderr)
        return 1
    return 0
