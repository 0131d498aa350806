"""Fault drills: real sweeps (real ORPO trials, real storage) with a fault injected, and what survived, counted.

    .venv/bin/python bench/reliability.py                      # every scenario that can run here
    .venv/bin/python bench/reliability.py kill-worker disk-full  # some of them
    .venv/bin/python bench/reliability.py --json               # one JSON object per scenario

Scenarios (loopback only; each stops by itself):
  kill-worker       `kill -9` one of two workers (`sweep --workers 2`) mid-trial; the other finishes the study
  kill-lone-worker  `kill -9` the only worker mid-trial; a worker started afterwards finishes the study
  postgres-restart  restart PostgreSQL twice while two workers train
  postgres-8        8 workers, fast trials, one PostgreSQL study
  sqlite-8          8 workers, fast trials, one SQLite file
  read-only         an existing SQLite study in a read-only folder (a read-only bind mount)
  disk-full         the SQLite study's file system fills up mid-sweep (a small tmpfs); then space is freed, resumed

PostgreSQL is SWEEPER_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test). A password is put into
its URL (trust authentication ignores it) so that every scenario also counts where it leaked: it must be nowhere.
`postgres-restart` needs root and pg_ctlcluster; `read-only` and `disk-full` need root to mount.
tests/reliability/test_faults.py runs the same functions and asserts on the counts; docs/reliability.md records a run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import yaml
from optuna.trial import FrozenTrial, TrialState

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SWEEPER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
PASSWORD = "s3cret-reliability"  # trust authentication accepts any password: it is here to be looked for
RETRIED_FROM = "failed_trial"  # system attribute Optuna's retry callback puts on the re-queued copy
REPEATED_CONFIGURATION = "repeated configuration"  # sweeper.sweep._progress: a draw refused as a repeat

# Two optimizer steps on 16 pairs: a trial is seconds of real ORPO training.
FAST_TRAINING = {
    "data": {"builtin": {"n_train": 16, "n_eval": 8}},
    "orpo": {"max_steps": 2, "logging_steps": 1, "eval_steps": 2, "per_device_train_batch_size": 4},
}
# Trials a kill must land in the middle of: long enough that "running" is still true a moment later.
KILLABLE_TRAINING = {**FAST_TRAINING, "orpo": {**FAST_TRAINING["orpo"], "max_steps": 32, "eval_steps": 8}}
SPACE = {"orpo.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}, "lora.lora_dropout": {"uniform": [0.0, 0.2]}}


@dataclass
class Outcome:
    """What one drill did and what survived it. `lost` and `doubled` must be 0."""

    scenario: str
    injected: str
    target: int
    complete: int = 0
    failed: int = 0
    retried: int = 0  # failed because their worker died, then run again from a WAITING copy
    lost: int = 0  # trials short of the target, or stuck RUNNING/WAITING after the drill
    doubled: int = 0  # a failed trial run again more than once, or a trial number stored twice
    extra: int = 0  # COMPLETE trials past the target (workers racing for the last slot)
    incomplete_curves: int = 0  # COMPLETE trials whose train or eval curve stops short of their last step
    storage_retries: int = 0  # storage calls that failed and were retried (one log line each)
    leaked_passwords: int = 0  # occurrences of the URL's password in everything the commands printed
    exit_codes: list[int] = field(default_factory=list)
    tracebacks: int = 0
    facts: dict[str, Any] = field(default_factory=dict)  # what else the drill measured, by name
    study_name: str = ""
    storage: str = field(default="", repr=False)  # holds the password: never printed
    seconds: float = 0.0


def postgres_url_with_password(url: str = POSTGRES_URL) -> str:
    url = sqlalchemy.engine.make_url(url).set(password=PASSWORD)
    return url.render_as_string(hide_password=False)


def unique_name(prefix: str) -> str:
    return f"reliability-{prefix}-{uuid.uuid4().hex[:8]}"


def write_study(folder: Path, name: str, storage: str, n_trials: int, training: dict = FAST_TRAINING) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(training))
    study = {
        "study_name": name,
        "base_config": "base.yaml",
        "space": SPACE,
        "objectives": [{"name": "eval_nll_loss"}, {"name": "eval_logp_margin"}],
        "sampler": {"name": "random", "seed": 0},
        "n_trials": n_trials,
        "storage": storage,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _environment() -> dict[str, str]:
    # one thread per process: several workers share the CPU cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}


class Command:
    """A `sweeper` command line in its own process, its output in files (read back with `output()`)."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        self.stdout, self.stderr = log.with_suffix(".out").open("w"), log.with_suffix(".err").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sweeper.cli", *args], stdout=self.stdout, stderr=self.stderr,
            env=_environment(), cwd=log.parent,
        )

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise TimeoutError(f"{self.log.name} still running after {timeout_s:.0f} s; killed") from None
        finally:
            self.stdout.close()
            self.stderr.close()

    def output(self) -> str:
        return self.log.with_suffix(".out").read_text() + self.log.with_suffix(".err").read_text()


def run_command(args: list[str], log: Path, timeout_s: float = 600) -> tuple[int, str]:
    command = Command(args, log)
    code = command.wait(timeout_s)
    return code, command.output()


def trials_of(storage: str, name: str) -> list[FrozenTrial]:
    """The study's trials, or [] while it does not exist yet or the storage does not answer."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    engine_storage = None
    try:
        engine_storage = optuna.storages.RDBStorage(storage, skip_table_creation=True)
        return optuna.load_study(study_name=name, storage=engine_storage).get_trials(deepcopy=False)
    except (KeyError, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError):
        return []
    finally:
        if engine_storage is not None:
            engine_storage.engine.dispose()


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, command: Command, poll_s: float = 0.5
) -> None:
    """Until `condition()`; an error (with the command's output) if the command ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if command.process.poll() is not None:
            raise RuntimeError(f"{command.log.name} ended (exit code {command.process.returncode}) before {what}:\n"
                               f"{command.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}:\n{command.output()[-3000:]}")
        time.sleep(poll_s)


def count_states(trials: list[FrozenTrial], state: TrialState) -> int:
    return sum(trial.state == state for trial in trials)


def curve_gaps(storage: str, name: str, trials: list[FrozenTrial]) -> int:
    """COMPLETE trials whose stored train or eval loss curve does not reach the trial's last optimizer step."""
    from sweeper.storage import CurveStore

    with CurveStore(storage) as curves:
        rows = curves.read(name)
    last_step: dict[tuple[int, str], int] = {}
    for row in rows:
        if row["metric"] == "loss":
            key = (row["trial_number"], row["split"])
            last_step[key] = max(last_step.get(key, -1), row["step"])
    gaps = 0
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        steps = trial.user_attrs.get("global_steps")
        if any(last_step.get((trial.number, split)) != steps for split in ("train", "eval")):
            gaps += 1
    return gaps


def settle(outcome: Outcome, storage: str, name: str, outputs: list[str]) -> Outcome:
    """Count what the drill left in storage and in the printed output."""
    outcome.study_name, outcome.storage = name, storage
    trials = trials_of(storage, name)
    retried_from = [trial.system_attrs[RETRIED_FROM] for trial in trials if RETRIED_FROM in trial.system_attrs]
    outcome.complete = count_states(trials, TrialState.COMPLETE)
    outcome.failed = count_states(trials, TrialState.FAIL)
    outcome.retried = len(set(retried_from))
    stuck = count_states(trials, TrialState.RUNNING) + count_states(trials, TrialState.WAITING)
    # a draw refused for repeating a finished trial's configuration is replaced by another draw: not a loss
    unretried_failures = sum(
        trial.state == TrialState.FAIL and trial.number not in retried_from
        and trial.user_attrs.get("failure_reason") != REPEATED_CONFIGURATION
        for trial in trials
    )
    outcome.lost = max(0, outcome.target - outcome.complete) + stuck + unretried_failures
    numbers = [trial.number for trial in trials]
    # the same configuration trained twice is a trial stored twice under two numbers
    finished_params = [
        tuple(sorted(trial.params.items())) for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    outcome.facts["repeated configurations"] = len(finished_params) - len(set(finished_params))
    outcome.doubled = (
        (len(retried_from) - len(set(retried_from))) + (len(numbers) - len(set(numbers)))
        + outcome.facts["repeated configurations"]
    )
    outcome.extra = max(0, outcome.complete - outcome.target)
    outcome.incomplete_curves = curve_gaps(storage, name, trials)
    text = "\n".join(outputs)
    outcome.storage_retries = text.count("; retry ")
    outcome.leaked_passwords = text.count(PASSWORD)
    outcome.tracebacks = text.count("Traceback")
    return outcome


def delete_drill_study(outcome: Outcome) -> None:
    """Remove the drill's study and curves from a shared PostgreSQL database (SQLite files go with their folder)."""
    if not outcome.storage.startswith("postgresql"):
        return
    from sweeper.storage import CurveStore

    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=outcome.study_name, storage=outcome.storage)
    with CurveStore(outcome.storage) as curves:
        curves.delete_study(outcome.study_name)


def frozen_view(trial: FrozenTrial) -> tuple:
    """What must not change once a trial is finished."""
    return (trial.number, trial.state.name, trial.values, trial.params, trial.user_attrs, trial.datetime_complete)


# ---------------------------------------------------------------------------------------------------- scenarios


def _freshly_started(trials: list[FrozenTrial], within_s: float = 1.0) -> FrozenTrial | None:
    """A RUNNING trial that started under `within_s` ago and names its worker: most of its training is still ahead."""
    now = datetime.datetime.now()
    for trial in trials:
        if (trial.state == TrialState.RUNNING and trial.datetime_start is not None and "worker" in trial.user_attrs
                and (now - trial.datetime_start).total_seconds() < within_s):
            return trial
    return None


def _worker_processes(pid: int) -> list[int]:
    """The `sweeper.cli worker` processes a `sweep --workers N` process started."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # the command name may hold spaces: the parent pid is the 2nd field after its closing parenthesis
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != pid:
                continue
            arguments = (stat.parent / "cmdline").read_bytes().split(b"\0")
            if b"sweeper.cli" in arguments and b"worker" in arguments:
                workers.append(int(stat.parent.name))
    return sorted(workers)


def kill_worker(workdir: Path, storage: str) -> Outcome:
    """`sweep --workers 2`; one worker process gets SIGKILL mid-trial. Its trial must be failed once the grace period
    (4 s, heartbeat every 1 s) is over, and re-queued; the other worker finishes the study."""
    started = time.monotonic()
    name = unique_name("kill")
    study = write_study(workdir, name, storage, n_trials=6, training=KILLABLE_TRAINING)
    outcome = Outcome("kill-worker", "SIGKILL to one of two worker processes mid-trial", target=6)
    sweep = Command(
        ["sweep", str(study), "--workers", "2", "--heartbeat-interval", "1", "--grace-period", "4"],
        workdir / "sweep.log",
    )

    seen: list[FrozenTrial] = []

    def one_done_both_running_one_just_started() -> bool:  # its worker is the one killed: it dies mid-trial
        seen[:] = trials_of(storage, name)
        return (count_states(seen, TrialState.COMPLETE) >= 1 and count_states(seen, TrialState.RUNNING) == 2
                and _freshly_started(seen) is not None)

    wait_until(one_done_both_running_one_just_started, 600, "one trial finished and both workers running one", sweep,
               poll_s=0.1)
    before = {t.number: frozen_view(t) for t in seen if t.state == TrialState.COMPLETE}
    fresh = _freshly_started(seen)
    running = {fresh.number}
    workers = _worker_processes(sweep.process.pid)
    victim = int(fresh.user_attrs["worker"].rsplit(":", 1)[1])
    outcome.facts["victim is a worker of this sweep"] = victim in workers
    workers = [victim, *(pid for pid in workers if pid != victim)]
    outcome.facts["worker processes"] = len(workers)
    outcome.facts["password in worker command lines"] = sum(
        Path(f"/proc/{pid}/cmdline").read_bytes().count(PASSWORD.encode()) for pid in workers
    )
    os.kill(workers[0], signal.SIGKILL)
    killed_at = time.time()
    outcome.exit_codes.append(sweep.wait(900))
    settle(outcome, storage, name, [sweep.output()])
    outcome.facts["kill reported"] = "was killed by signal 9" in sweep.output()
    trials = {t.number: t for t in trials_of(storage, name)}
    victims = [number for number in running if trials[number].state == TrialState.FAIL]
    outcome.facts["killed trials"] = victims
    if len(victims) == 1:
        failed = trials[victims[0]]
        outcome.facts["seconds from kill to FAIL"] = round(failed.datetime_complete.timestamp() - killed_at, 1)
        copies = [t for t in trials.values() if t.system_attrs.get(RETRIED_FROM) == failed.number]
        outcome.facts["re-queued copies"] = [copy.number for copy in copies]
        outcome.facts["copies have its parameters"] = bool(copies) and all(c.params == failed.params for c in copies)
    outcome.facts["finished trials changed"] = [n for n, view in before.items() if frozen_view(trials[n]) != view]
    outcome.seconds = time.monotonic() - started
    return outcome


def kill_lone_worker(workdir: Path, storage: str) -> Outcome:
    """Worker A finishes a trial and starts another; it is killed with SIGKILL mid-trial. Worker B, started after,
    must find A's trial stale (heartbeat 1 s, grace 4 s), fail it, run its re-queued copy and finish the study."""
    started = time.monotonic()
    name = unique_name("kill-lone")
    study = write_study(workdir, name, storage, n_trials=3, training=KILLABLE_TRAINING)
    outcome = Outcome("kill-lone-worker", "SIGKILL to the only worker mid-trial; another started later", target=3)
    heartbeat = ["--heartbeat-interval", "1", "--grace-period", "4"]
    worker_a = Command(["worker", str(study), "--no-progress", *heartbeat], workdir / "worker-a.log")

    seen: list[FrozenTrial] = []

    def one_done_one_running() -> bool:
        seen[:] = trials_of(storage, name)
        return count_states(seen, TrialState.COMPLETE) >= 1 and count_states(seen, TrialState.RUNNING) >= 1

    wait_until(one_done_one_running, 600, "worker A to finish one trial and start the next", worker_a, poll_s=0.2)
    before = {t.number: frozen_view(t) for t in seen if t.state == TrialState.COMPLETE}
    victim = next(t.number for t in seen if t.state == TrialState.RUNNING)
    worker_a.process.send_signal(signal.SIGKILL)
    killed_at = time.time()
    outcome.exit_codes.append(worker_a.wait(30))

    code, output_b = run_command(["worker", str(study), "--no-progress", *heartbeat], workdir / "worker-b.log")
    outcome.exit_codes.append(code)
    settle(outcome, storage, name, [worker_a.output(), output_b])
    trials = {t.number: t for t in trials_of(storage, name)}
    failed = trials[victim]
    copies = [t for t in trials.values() if t.system_attrs.get(RETRIED_FROM) == victim]
    outcome.facts["killed trial state"] = failed.state.name
    outcome.facts["re-queued copies"] = [copy.number for copy in copies]
    outcome.facts["copies have its parameters"] = bool(copies) and all(c.params == failed.params for c in copies)
    if failed.state == TrialState.FAIL:
        # the first ask of worker B, which starts after the kill, finds the trial stale
        outcome.facts["seconds from kill to FAIL"] = round(failed.datetime_complete.timestamp() - killed_at, 1)
    outcome.facts["finished trials changed"] = [n for n, view in before.items() if frozen_view(trials[n]) != view]
    outcome.seconds = time.monotonic() - started
    return outcome


def postgres_restart(workdir: Path, storage: str) -> Outcome:
    """Two workers (`sweep --workers 2`) train while PostgreSQL is restarted twice (fast shutdown: every connection
    is cut). Workers must ride through: no trial failed, lost or doubled, every curve complete."""
    started = time.monotonic()
    name = unique_name("restart")
    study = write_study(workdir, name, storage, n_trials=4)
    outcome = Outcome("postgres-restart", "PostgreSQL restarted twice mid-sweep (2 workers)", target=4)
    # grace above the outage, so that no healthy trial is taken for a dead one while the server is away
    sweep = Command(
        ["sweep", str(study), "--workers", "2", "--heartbeat-interval", "1", "--grace-period", "30"],
        workdir / "sweep.log",
    )
    cluster = sorted(os.listdir("/etc/postgresql"))[-1]
    for stage, condition in (
        ("a trial running", lambda trials: count_states(trials, TrialState.RUNNING) >= 1),
        ("two trials finished", lambda trials: count_states(trials, TrialState.COMPLETE) >= 2),
    ):
        wait_until(lambda: condition(trials_of(storage, name)), 600, stage, sweep)
        time.sleep(1.0)
        restart_started = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"], check=True, timeout=120
        )
        outcome.facts[f"seconds the restart took, with {stage}"] = round(time.monotonic() - restart_started, 1)
    outcome.exit_codes.append(sweep.wait(900))
    settle(outcome, storage, name, [sweep.output(), *status_outputs(study, workdir)])
    outcome.seconds = time.monotonic() - started
    return outcome


def status_outputs(study: Path, workdir: Path) -> list[str]:
    """`sweeper status` as a table and as JSON: both must show the storage without its password."""
    return [
        run_command(["status", str(study), *extra], workdir / f"status{len(extra)}.log", 300)[1]
        for extra in ([], ["--json"])
    ]


def many_workers(workdir: Path, storage: str, scenario: str, n_workers: int = 8, n_trials: int = 16) -> Outcome:
    """`sweep --workers 8` on fast trials: every worker creates, heartbeats and finishes trials on one study."""
    started = time.monotonic()
    name = unique_name(scenario)
    study = write_study(workdir, name, storage, n_trials=n_trials)
    outcome = Outcome(scenario, f"{n_workers} workers on one study", target=n_trials)
    code, output = run_command(["sweep", str(study), "--workers", str(n_workers)], workdir / "sweep.log", 1200)
    outcome.exit_codes.append(code)
    settle(outcome, storage, name, [output, *status_outputs(study, workdir)])
    outcome.facts["'database is locked' printed"] = output.count("database is locked")
    outcome.facts["storage errors printed"] = sum(map(output.count, ("StorageInternalError", "OperationalError")))
    outcome.seconds = time.monotonic() - started
    return outcome


@contextlib.contextmanager
def mounted(kind: str, target: Path, source: Path | None = None, size: str = "1m") -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    if kind == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)
    else:  # a read-only view of `source`
        subprocess.run(["mount", "--bind", "-o", "ro", str(source), str(target)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def sqlite_integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return connection.execute("pragma integrity_check").fetchone()[0]


def read_only_folder(workdir: Path) -> Outcome:
    """A study with a finished trial; its folder becomes read-only; `sweep` must refuse clearly, change nothing."""
    started = time.monotonic()
    name = unique_name("readonly")
    source = workdir / "writable"
    storage = f"sqlite:///{source / 'study.db'}"
    study = write_study(workdir, name, storage, n_trials=1)
    outcome = Outcome("read-only", "the storage folder made read-only (bind mount)", target=1)
    code, output = run_command(["sweep", str(study)], workdir / "first.log")
    outcome.exit_codes.append(code)
    before = (source / "study.db").read_bytes()
    view = workdir / "read-only"
    with mounted("bind", view, source):
        ro_storage = f"sqlite:///{view / 'study.db'}"
        refused_args = ["sweep", str(study), "--storage", ro_storage, "--n-trials", "2"]
        code, refused = run_command(refused_args, workdir / "ro.log")
        outcome.exit_codes.append(code)
    outcome.facts["message"] = refused.strip().splitlines()[-1] if refused.strip() else ""
    outcome.facts["stored file unchanged"] = (source / "study.db").read_bytes() == before
    settle(outcome, storage, name, [output, refused])
    outcome.seconds = time.monotonic() - started
    return outcome


def disk_full(workdir: Path) -> Outcome:
    """The SQLite file lives on a 16 MiB tmpfs. After the first trial finishes, the rest of the space is filled:
    the sweep must stop with a clear error, the file stay intact, the finished trial unchanged; once space is
    freed, the same command resumes the study to its target."""
    started = time.monotonic()
    name = unique_name("diskfull")
    disk = workdir / "disk"
    storage = f"sqlite:///{disk / 'study.db'}"
    study = write_study(workdir, name, storage, n_trials=4)
    outcome = Outcome("disk-full", "the storage's file system filled up mid-sweep (16 MiB tmpfs)", target=4)
    heartbeat = ["--heartbeat-interval", "1", "--grace-period", "4"]
    with mounted("tmpfs", disk, size="16m"):  # room for the sweep's report (~5 MB) once space is freed
        sweep = Command(["sweep", str(study), *heartbeat], workdir / "full.log")

        def one_finished() -> bool:
            return count_states(trials_of(storage, name), TrialState.COMPLETE) >= 1

        wait_until(one_finished, 600, "a finished trial", sweep)
        before = {t.number: frozen_view(t) for t in trials_of(storage, name) if t.state == TrialState.COMPLETE}
        filler = disk / "filler"
        with contextlib.suppress(OSError), filler.open("wb", buffering=0) as fill:
            while True:  # until ENOSPC
                fill.write(b"\0" * 4096)
        outcome.exit_codes.append(sweep.wait(600))
        full_output = sweep.output()
        outcome.facts["message"] = full_output.strip().splitlines()[-1] if full_output.strip() else ""
        # the report and export go beside the SQLite file, shown relative to the command's working directory
        outcome.facts["hand-off folder"] = os.path.relpath(disk / name, workdir)
        outcome.facts["integrity_check after the fault"] = sqlite_integrity(disk / "study.db")
        filler.unlink()
        time.sleep(5)  # past the grace period: the interrupted trial is stale and gets re-queued on resume
        code, resumed = run_command(["sweep", str(study), *heartbeat], workdir / "resumed.log")
        outcome.exit_codes.append(code)
        trials = {t.number: t for t in trials_of(storage, name)}
        outcome.facts["finished trials changed"] = [n for n, view in before.items() if frozen_view(trials[n]) != view]
        settle(outcome, storage, name, [full_output, resumed])
    outcome.seconds = time.monotonic() - started
    return outcome


# ---------------------------------------------------------------------------------------------------- command line


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def postgres_answers() -> bool:
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def run_scenario(scenario: str, workdir: Path) -> Outcome:
    postgres = postgres_url_with_password(POSTGRES_URL)
    runners = {
        "kill-worker": lambda: kill_worker(workdir, postgres),
        "kill-lone-worker": lambda: kill_lone_worker(workdir, postgres),
        "postgres-restart": lambda: postgres_restart(workdir, postgres),
        "postgres-8": lambda: many_workers(workdir, postgres, "postgres-8"),
        "sqlite-8": lambda: many_workers(workdir, f"sqlite:///{workdir / 'study.db'}", "sqlite-8"),
        "read-only": lambda: read_only_folder(workdir),
        "disk-full": lambda: disk_full(workdir),
    }
    return runners[scenario]()


def unavailable(scenario: str) -> str | None:
    """Why a scenario cannot run on this machine, or None."""
    if scenario in ("kill-worker", "kill-lone-worker", "postgres-restart", "postgres-8") and not postgres_answers():
        return f"no PostgreSQL answers at {POSTGRES_URL}"
    if scenario == "postgres-restart" and not (is_root() and shutil.which("pg_ctlcluster")):
        return "restarting PostgreSQL needs root and pg_ctlcluster"
    if scenario in ("read-only", "disk-full") and not is_root():
        return "mounting a read-only folder or a small tmpfs needs root"
    return None


SCENARIOS = ("kill-worker", "kill-lone-worker", "postgres-restart", "postgres-8", "sqlite-8", "read-only", "disk-full")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)}; default: all")
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's folder (logs, study files)")
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    failures = 0
    for scenario in args.scenarios or SCENARIOS:
        reason = unavailable(scenario)
        if reason:
            print(f"{scenario}: skipped ({reason})", file=sys.stderr)
            continue
        folder = Path(tempfile.mkdtemp(prefix=f"sweeper-{scenario}-"))
        try:
            outcome = run_scenario(scenario, folder)
            delete_drill_study(outcome)
        finally:
            if args.keep:
                print(f"{scenario}: files kept in {folder}", file=sys.stderr)
            else:
                shutil.rmtree(folder, ignore_errors=True)
        failures += bool(outcome.lost or outcome.doubled or outcome.leaked_passwords)
        if args.json:
            print(json.dumps({k: v for k, v in asdict(outcome).items() if k != "storage"}), flush=True)
            continue
        print(
            f"{outcome.scenario}: {outcome.injected}\n"
            f"  target {outcome.target}, complete {outcome.complete}, failed {outcome.failed} "
            f"(retried {outcome.retried}), lost {outcome.lost}, doubled {outcome.doubled}, extra {outcome.extra}, "
            f"incomplete curves {outcome.incomplete_curves}, storage retries {outcome.storage_retries}, "
            f"leaked passwords {outcome.leaked_passwords}, tracebacks {outcome.tracebacks}, "
            f"exit codes {outcome.exit_codes}, {outcome.seconds:.0f} s",
            flush=True,
        )
        for name, value in outcome.facts.items():
            print(f"  - {name}: {value}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
