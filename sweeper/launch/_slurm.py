"""`sweeper launch slurm`: a job array of workers (one array task per node, one worker per GPU) and a closing job,
run after every worker has ended (`afterany`), that writes the report and the Pareto export."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ._worker_command import WorkerOptions

SBATCH = "sbatch"


@dataclass(frozen=True)
class SlurmOptions:
    """What the jobs ask SLURM for. `gpus_per_node` 0: one CPU worker per node."""

    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_worker: int = 4
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    memory: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run first on each node: `module load cuda`, `source .venv/bin/activate`
    sbatch_options: tuple[str, ...] = ()  # more `#SBATCH` options, e.g. --qos=high

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ConfigError(f"--nodes {self.nodes}: give 1 or more nodes")
        if self.gpus_per_node < 0:
            raise ConfigError(f"--gpus-per-node {self.gpus_per_node}: give 0 (CPU workers) or more")
        if self.cpus_per_worker < 1:
            raise ConfigError(f"--cpus-per-worker {self.cpus_per_worker}: give 1 or more")
        for option in self.sbatch_options:
            if not option.startswith("--") or "\n" in option:
                raise ConfigError(f"--sbatch-option {option!r}: give one long option, e.g. --qos=high")


@dataclass
class SlurmLaunch:
    """The written job files and, once submitted, the job ids."""

    folder: Path
    worker_script: Path
    report_script: Path
    storage_file: Path
    worker_job: str | None = None
    report_job: str | None = None

    def submit_commands(self) -> list[str]:
        """The sbatch commands, as a user would type them (for --dry-run)."""
        return [
            f"{SBATCH} --parsable {shlex.quote(str(self.worker_script))}",
            f"{SBATCH} --dependency=afterany:<worker job id> {shlex.quote(str(self.report_script))}",
        ]


def _header(job_name: str, options: SlurmOptions, output: Path, workdir: Path, cpus: int) -> list[str]:
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={cpus}",
        f"#SBATCH --chdir={workdir}",
        f"#SBATCH --output={output}",
        "#SBATCH --open-mode=append",  # a requeued job adds to its log
    ]
    for option, value in (("partition", options.partition), ("time", options.time), ("account", options.account)):
        if value:
            lines.append(f"#SBATCH --{option}={value}")
    return lines


def _shell_setup(options: SlurmOptions) -> list[str]:
    # the user's lines first: `module load` and venv activation scripts often read unset variables, which -u refuses;
    # then -u and pipefail, not -e: the script must reach its own exit handling when a worker fails
    return [*options.setup, "set -uo pipefail"]


def _sweeper(python: str, subcommand: str, study_file: Path, storage_file: Path, *extra: str) -> str:
    words = [python, "-m", "sweeper.cli", subcommand, str(study_file), "--storage-file", str(storage_file), *extra]
    return " ".join(shlex.quote(word) for word in words)


def worker_script(
    study_file: Path, study_name: str, storage_file: Path, options: SlurmOptions, worker: WorkerOptions,
    folder: Path, python: str, workdir: Path,
) -> str:
    logs = folder / "logs"
    per_node = max(options.gpus_per_node, 1)
    lines = _header(f"sweeper-{study_name}", options, logs / "job-%A_%a.log", workdir, options.cpus_per_worker * per_node)
    lines += [f"#SBATCH --array=0-{options.nodes - 1}", "#SBATCH --requeue"]  # preempted: back in the queue
    if options.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={options.gpus_per_node}")
    if options.memory:
        lines.append(f"#SBATCH --mem={options.memory}")
    lines += [f"#SBATCH {option}" for option in options.sbatch_options]
    command = _sweeper(python, "worker", study_file, storage_file, *worker.arguments())
    lines += [
        f"# sweeper workers of study {study_name}: written by `sweeper launch slurm`. The storage URL is read from",
        "# a file only its owner can read; it is on no command line and in no log.",
        *_shell_setup(options),
        f"export OMP_NUM_THREADS={options.cpus_per_worker}",
        f"logs={shlex.quote(str(logs))}",
        'task="${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-local}}_${SLURM_ARRAY_TASK_ID:-0}"',
        "# one worker per GPU this job was given (SLURM sets CUDA_VISIBLE_DEVICES); none: one CPU worker",
        'IFS=, read -r -a gpus <<< "${CUDA_VISIBLE_DEVICES:-}"',
        f'if [ "${{#gpus[@]}}" -eq 0 ] && [ {options.gpus_per_node} -gt 0 ]; then '
        f"gpus=($(seq 0 {options.gpus_per_node - 1})); fi",
        'if [ "${#gpus[@]}" -eq 0 ]; then gpus=(""); fi',
        "pids=()",
        'for slot in "${!gpus[@]}"; do',
        f'    CUDA_VISIBLE_DEVICES="${{gpus[$slot]}}" {command} >> "$logs/worker-$task-$slot.log" 2>&1 &',
        "    pids+=($!)",
        "done",
        "# scancel, preemption and the time limit send SIGTERM: each worker stores its running trial as interrupted",
        "# and queues it again. Pass the signal on and wait for the workers to finish that.",
        'stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; }',
        "trap stop TERM INT",
        "status=0",
        'for pid in "${pids[@]}"; do',
        '    wait "$pid"; code=$?',
        '    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; code=$?; done  # a trap ends `wait` early',
        '    if [ "$code" -ne 0 ]; then status=$code; fi',
        "done",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def report_script(
    study_file: Path, study_name: str, storage_file: Path, options: SlurmOptions, folder: Path, python: str,
    workdir: Path,
) -> str:
    lines = _header(f"sweeper-{study_name}-report", options, folder / "logs" / "report-%j.log", workdir, 2)
    lines += [
        f"# the closing job of study {study_name}: once every worker job has ended, whatever its outcome",
        *_shell_setup(options),
        "status=0",
        _sweeper(python, "status", study_file, storage_file) + " || status=$?",
        _sweeper(python, "report", study_file, storage_file, "-o", str(folder / "report.html")) + " || status=$?",
        _sweeper(python, "export", study_file, storage_file, "-o", str(folder / "export")) + " || status=$?",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def slurm_launch(
    study_file: Path,
    study_name: str,
    storage_file: Path,
    options: SlurmOptions,
    worker: WorkerOptions,
    folder: Path,
    python: str,
    submit: bool,
    hide_from_jobs: tuple[str, ...] = (),
) -> SlurmLaunch:
    """Write worker.sbatch and report.sbatch into `folder` (logs/ beside them) and, with `submit`, submit both.
    `hide_from_jobs`: environment variables sbatch must not copy into the jobs (one holding the storage URL)."""
    folder = folder.absolute()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    workdir = Path.cwd()
    study_file = study_file.absolute()
    launch = SlurmLaunch(folder, folder / "worker.sbatch", folder / "report.sbatch", storage_file)
    launch.worker_script.write_text(
        worker_script(study_file, study_name, storage_file, options, worker, folder, python, workdir), encoding="utf-8"
    )
    launch.report_script.write_text(
        report_script(study_file, study_name, storage_file, options, folder, python, workdir), encoding="utf-8"
    )
    if submit:
        environment = {key: value for key, value in os.environ.items() if key not in hide_from_jobs}
        launch.worker_job = _sbatch([str(launch.worker_script)], environment, launch)
        launch.report_job = _sbatch(
            [f"--dependency=afterany:{launch.worker_job}", str(launch.report_script)], environment, launch
        )
    return launch


def _sbatch(arguments: list[str], environment: dict[str, str], launch: SlurmLaunch) -> str:
    command = [SBATCH, "--parsable", *arguments]
    try:
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ConfigError(
            f"{SBATCH} not found: run this on a SLURM login node, or write the jobs with --dry-run and submit "
            f"{launch.worker_script} there"
        ) from None
    if done.returncode != 0:
        raise ConfigError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().split(";")[0]  # --parsable: "<job id>[;<cluster>]"
