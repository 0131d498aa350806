"""The `sweeper` command line. Each subcommand is a thin shell over one stage of the package."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from ._command import collector_paused, exit_without_teardown, import_paused, run_command
from .config import ConfigError


def _quiet_libraries() -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    # the environment variable only counts before datasets is first imported; an embedding process may have done that
    datasets.disable_progress_bars()


def _print_trial(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from .metrics import ORPO_METRICS

    table = Table(title="ORPO trial: final metrics")
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("eval", justify="right")
    for name in ORPO_METRICS:
        train, evaluation = result.train_metrics.get(name), result.eval_metrics.get(f"eval_{name}")
        table.add_row(name, *(f"{v:.4f}" if v is not None else "-" for v in (train, evaluation)))
    for name in ("runtime", "samples_per_second", "steps_per_second"):
        train, evaluation = result.train_metrics.get(f"train_{name}"), result.eval_metrics.get(f"eval_{name}")
        table.add_row(name, *(f"{v:.3f}" if v is not None else "-" for v in (train, evaluation)))
    console = Console()
    console.print(table)
    console.print(
        f"steps {result.global_steps}, effective batch {result.effective_batch_size}, "
        f"{result.train_rows} train / {result.eval_rows} eval pairs, "
        f"{result.dropped_long_prompts} dropped for prompts filling max_length, wall {result.runtime_s:.1f} s"
    )
    for note in result.notes:
        console.print(f"note: {note}")


def cmd_trial(args: argparse.Namespace) -> int:
    with collector_paused():  # the training stack
        from .config import load_training_config

        config = load_training_config(args.config, args.set)
        _quiet_libraries()
        from .trial import TrialFailure, run_trial

    with tempfile.TemporaryDirectory(prefix="sweeper-trial-") as scratch:
        try:
            result = run_trial(config, args.output_dir or scratch)
        except TrialFailure as failure:
            if isinstance(failure.__cause__, ConfigError):  # bad input (data, model, max_length), not a failed run
                raise failure.__cause__ from None
            if args.json:
                print(json.dumps({"state": "FAIL", "failure_reason": failure.reason, "detail": failure.detail}))
            print(f"trial failed: {failure}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"state": "COMPLETE", **result.to_dict()}))
    else:
        _print_trial(result)
    return 0


def _setup_sweep_logging() -> None:
    import logging

    import optuna

    # one line per failed trial from sweeper; Optuna's own log repeats each with a traceback
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("sweeper.sweep._preflight").setLevel(logging.INFO)  # the data line: rows, drops, fingerprint
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _load_spec(args: argparse.Namespace):
    """The study file with the command line's changes; its storage URL resolved, not yet opened (the command opens
    it once: `_open_for_reading`, `open_checked`)."""
    from .storage import resolve_storage_url
    from .study import load_study_spec

    storage = _storage_argument(args)
    spec = load_study_spec(args.study, n_trials=getattr(args, "n_trials", None), storage=storage)
    updates = {"storage": resolve_storage_url(spec.storage)}  # absolute, so every worker opens the same file
    if getattr(args, "timeout_s", None) is not None:
        if args.timeout_s <= 0:  # model_copy skips the study file's own check
            raise ConfigError(f"--timeout {args.timeout_s:g}: give a positive number of seconds")
        updates["timeout_s"] = args.timeout_s
    if getattr(args, "pack", None) is not None:
        if args.pack < 1:  # model_copy skips the study file's own check
            raise ConfigError(f"--pack {args.pack}: give 1 (one trial at a time) or more")
        updates["pack"] = args.pack
    return spec.model_copy(update=updates)


def _storage_argument(args: argparse.Namespace) -> str | None:
    """The storage URL given on the command line, by --storage, --storage-env or --storage-file (one of them)."""
    from .storage import read_storage_file

    given = [f"--{name.replace('_', '-')}" for name in ("storage", "storage_env", "storage_file") if getattr(args, name, None)]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: give the storage URL one way only")
    if getattr(args, "storage_env", None):
        storage = os.environ.get(args.storage_env)
        if not storage:
            raise ConfigError(f"--storage-env {args.storage_env}: that environment variable is not set or empty")
        return storage
    if getattr(args, "storage_file", None):
        return read_storage_file(args.storage_file)
    return getattr(args, "storage", None)


def _open_for_reading(spec):
    """The study's storage for a command that only reads it: a clear error where it does not answer, and no empty
    SQLite file made."""
    from .storage import Storage

    return Storage.for_reading(spec.storage)


def _heartbeat(args: argparse.Namespace):
    from .sweep import HeartbeatSettings

    return HeartbeatSettings(interval_s=args.heartbeat_interval, grace_s=args.grace_period)


def _print_summary(spec, storage, study_file: str) -> None:
    import optuna

    from .sweep import read_progress

    study = optuna.load_study(study_name=spec.study_name, storage=storage.optuna)
    progress = read_progress(study, spec.n_trials)
    print(
        f"study {spec.study_name}: {progress.done} trials finished ({progress.failed} failed), "
        f"Pareto front {progress.pareto_size}, storage {storage.redacted}\n"
        f"next: sweeper status {study_file}"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    with collector_paused():
        spec = _load_spec(args)
        from .hand_off import HandOffHelper

    with HandOffHelper.start(args.debug) as helper:  # first: it imports the analysis while this imports training
        return _sweep(args, spec, helper)


def _sweep(args: argparse.Namespace, spec, helper) -> int:
    with collector_paused():  # the training stack: the worker's `gc.collect()` before its first trial skips it
        _quiet_libraries()
        _setup_sweep_logging()
        from .hand_off import write_hand_off
        from .storage import storage_failures_explained
        from .sweep import exit_code, launch_workers, open_checked, run_worker, signal_name, stop_signals_interrupt
        from .sweep import visible_gpus
        from .training import TrialReuse

    if args.workers is None:
        args.workers = max(1, len(visible_gpus()))  # one worker per GPU
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more worker processes")
    reuse = TrialReuse() if args.workers == 1 else None  # a worker in this process: its trials take the checked data
    try:
        with stop_signals_interrupt():
            # storage, data and prompt lengths: fail once here, not in every trial
            storage, inputs = open_checked(spec, _heartbeat(args), reuse)
            with storage, storage_failures_explained(spec.storage):
                if args.workers > 1:
                    code = launch_workers(
                        args.study, spec, args.workers, _heartbeat(args), inputs, args.allow_changed_inputs, storage
                    )
                else:
                    run_worker(
                        spec, heartbeat=_heartbeat(args), inputs=inputs, allow_changed_inputs=args.allow_changed_inputs,
                        storage=storage, reuse=reuse,
                    )
                    code = 0
                _print_summary(spec, storage, args.study)
                code = write_hand_off(spec.study_name, storage, helper) or code
    except KeyboardInterrupt as stop:  # Ctrl-C, SIGTERM or SIGHUP
        print(f"\ninterrupted ({signal_name(stop)}): the running trial is stored as FAIL (reason: interrupted), "
              "every worker stopped; run again to resume", file=sys.stderr)
        return exit_code(stop)
    return code


def cmd_worker(args: argparse.Namespace) -> int:
    with collector_paused():  # the training stack: the worker's `gc.collect()` before its first trial skips it
        spec = _load_spec(args)
        _quiet_libraries()
        _setup_sweep_logging()
        from .storage import storage_failures_explained
        from .sweep import dump_stack_on_signal, exit_code, open_checked, run_worker, stop_signals_interrupt
        from .sweep import watch_launcher
        from .training import TrialReuse

    dump_stack_on_signal()  # a worker stuck after a stop signal shows where (see sweep/_launch.py)
    watch = watch_launcher()  # launched by `sweep --workers N`: stop when the launcher is gone
    try:
        with stop_signals_interrupt():
            reuse = TrialReuse()  # its trials take the data checked here
            storage, inputs = open_checked(spec, _heartbeat(args), reuse)
            with storage, storage_failures_explained(spec.storage):
                run_worker(
                    spec, heartbeat=_heartbeat(args), show_progress=not args.no_progress, inputs=inputs,
                    allow_changed_inputs=args.allow_changed_inputs, storage=storage, reuse=reuse,
                )
    except KeyboardInterrupt as stop:
        return exit_code(stop)
    finally:
        if watch is not None:
            watch.set()
    return 0


def _status_value(value, digits: int = 3) -> str:
    """At most about 7 characters for a number: `digits` significant ones, in exponent form when plain is longer."""
    if value is None:
        return "-"
    if not isinstance(value, float):
        return str(value)
    plain = f"{value:.{digits}g}"
    return plain if len(plain) <= 7 else f"{value:.2g}".replace("e-0", "e-").replace("e+0", "e+")


def cmd_status(args: argparse.Namespace) -> int:
    with collector_paused():  # the storage stack
        import optuna
        from rich import box
        from rich.console import Console
        from rich.table import Table

        from .study import label_legend, short_label
        from .sweep import status_rows

        spec = _load_spec(args)
        storage = _open_for_reading(spec)
    try:
        study = optuna.load_study(study_name=spec.study_name, storage=storage.optuna)
    except KeyError:
        raise ConfigError(
            f"{args.study}: no study {spec.study_name!r} in {storage.redacted} yet; run `sweeper sweep {args.study}`"
        ) from None
    rows = status_rows(study)
    if args.json:
        print(json.dumps(rows))
        return 0
    every_row = rows
    if not args.all and len(rows) > STATUS_ROWS:
        rows = _rows_worth_a_line(rows)
    names = study.metric_names or [f"value {i}" for i in range(len(study.directions))]
    parameters = list(dict.fromkeys(name for row in rows for name in row["params"]))
    # short labels, one column per parameter, no vertical rules: readable in an 80-column terminal
    table = Table(title=f"{spec.study_name} ({storage.redacted}); * = Pareto front", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True,
                  title_justify="left")
    cells = []
    for row in rows:
        values = [_status_value(float(v), 4) for v in row["values"]] if row["values"] else ["-"] * len(names)
        params = [_status_value(row["params"].get(name)) for name in parameters]
        cells.append([f"{row['number']}{'*' if row['pareto'] else ''}", row["state"].lower(), *values, *params])
    for index, column in enumerate(("#", "state", *map(short_label, names), *map(short_label, parameters))):
        # numbers are never cut (the reasons go below the table)
        width = max((len(row[index]) for row in cells), default=1)
        table.add_column(column.replace(" ", "\n"), justify="left" if column == "state" else "right", min_width=width)
    for values in cells:
        table.add_row(*values)
    console = Console()
    console.print(table)
    for row in rows:
        reason = row["failure_reason"] or row["pruned_reason"]
        if reason:
            console.print(f"#{row['number']} {row['state'].lower()}: {reason}", highlight=False)
    legend = label_legend([*names, *parameters])
    if legend:
        console.print(f"columns: {legend}", highlight=False)
    if len(rows) < len(every_row):
        states = Counter(row["state"].lower() for row in every_row)
        console.print(
            f"{len(rows)} of {len(every_row)} trials shown ({', '.join(f'{n} {state}' for state, n in states.items())}): "
            f"the Pareto front, the running trials and the latest {STATUS_LATEST}; --all lists every trial, --json "
            "prints them all as JSON", highlight=False,
        )
    return 0


STATUS_ROWS = 60  # a study with more trials shows the ones worth a line (`_rows_worth_a_line`) unless --all
STATUS_LATEST = 20


def _rows_worth_a_line(rows: list[dict]) -> list[dict]:
    """Of a large study, the trials a person follows a sweep by: the Pareto front, the running ones, the latest."""
    latest = {row["number"] for row in sorted(rows, key=lambda row: row["number"])[-STATUS_LATEST:]}
    return [row for row in rows if row["pareto"] or row["state"] == "RUNNING" or row["number"] in latest]


def _analyze(args: argparse.Namespace, require_completed: bool = True, trials_only: bool = False):
    from .analysis import analyze_study

    spec = _load_spec(args)
    with _open_for_reading(spec) as storage:
        analysis = analyze_study(spec.study_name, storage, trials_only=trials_only)
    if require_completed and not analysis.completed:
        raise ConfigError(
            f"{args.study}: study {spec.study_name!r} has no completed trials yet; run `sweeper sweep {args.study}`"
        )
    return analysis


def cmd_analyze(args: argparse.Namespace) -> int:
    from .hand_off import STUDY_STACK

    import_paused(STUDY_STACK)
    analysis = _analyze(args, require_completed=False)
    if args.json:
        print(json.dumps(analysis.to_dict(), allow_nan=False))
    else:
        from .report import print_analysis

        print_analysis(analysis)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .hand_off import REPORT_STACK, STUDY_STACK

    import_paused((*STUDY_STACK, *REPORT_STACK))
    from .report import write_report

    print(f"report: {write_report(_analyze(args), args.output)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with collector_paused():
        _quiet_libraries()
        import_paused(("sweeper.training",))  # the export checks each config through TRL's and PEFT's own classes
        from .export import export_pareto

    manifest = export_pareto(_analyze(args, trials_only=True), args.output)  # the Pareto trials are all it reads
    first = Path(args.output) / manifest.trials[0].file
    print(f"exported {len(manifest.trials)} Pareto-front configs and manifest.yaml to {args.output}\n"
          f"re-run one: sweeper trial {first}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .analysis import load_stored_study
    from .dashboard import DEFAULT_PORT, HostError, dashboard_url, exposed, free_port, port_is_free, serve_dashboard

    spec = _load_spec(args)
    storage = _open_for_reading(spec)
    study = load_stored_study(spec.study_name, storage)
    port = args.port
    try:
        if port is None:
            port = DEFAULT_PORT if port_is_free(args.host, DEFAULT_PORT) else free_port(args.host)
        elif port == 0:
            port = free_port(args.host)
        elif not port_is_free(args.host, port):
            raise ConfigError(
                f"--port {port}: something already listens on {args.host}:{port}; choose another or --port 0"
            )
    except HostError as error:
        raise ConfigError(f"{error}. Fix: leave --host out (127.0.0.1, this machine only) or give one of its "
                          "addresses") from None
    if exposed(args.host):
        print(f"warning: --host {args.host} lets other machines reach the dashboard, which has no login and can "
              "delete studies; use it on a trusted network only", file=sys.stderr)
    # optuna-dashboard's URLs use the storage's study id, which Optuna keeps in a private attribute
    print(f"optuna-dashboard: {dashboard_url(args.host, port, study._study_id)} (Ctrl-C stops it)", flush=True)
    serve_dashboard(storage.optuna, args.host, port)
    return 0


def cmd_replicate(args: argparse.Namespace) -> int:
    with collector_paused():  # the training stack
        spec = _load_spec(args)
        _quiet_libraries()
        _setup_sweep_logging()
        from .replicate import run_replicates
        from .storage import replicates_study_name

    runs = run_replicates(spec, args.top, args.seeds)
    for run in runs:
        values = ", ".join(f"{v:.4g}" for v in run.values) if run.values else "-"
        print(f"trial {run.source_trial} seed {run.seed}: replicate {run.trial_number} {run.state} [{values}]")
    print(f"study {replicates_study_name(spec.study_name)}: {len(runs)} replicate run(s); "
          f"see the seed spread: sweeper analyze {args.study}")
    return 0 if all(run.state == "COMPLETE" for run in runs) else 1


def _worker_options(args: argparse.Namespace):
    from .launch import WorkerOptions

    return WorkerOptions(
        n_trials=args.n_trials, timeout_s=args.timeout_s, heartbeat_interval_s=args.heartbeat_interval,
        grace_period_s=args.grace_period, allow_changed_inputs=args.allow_changed_inputs,
    )


def cmd_launch_slurm(args: argparse.Namespace) -> int:
    import shlex

    from sqlalchemy.engine import make_url

    from .launch import SlurmOptions, slurm_launch, write_storage_file
    from .storage import check_storage_reachable, redact_url

    spec = _load_spec(args)
    options = SlurmOptions(
        nodes=args.nodes, gpus_per_node=args.gpus_per_node, cpus_per_worker=args.cpus_per_worker,
        partition=args.partition, time=args.time, account=args.account, memory=args.mem,
        setup=tuple(args.setup), sbatch_options=tuple(args.sbatch_option),
    )
    if make_url(spec.storage).get_backend_name() == "sqlite" and options.nodes > 1:
        raise ConfigError(
            f"{args.study}: storage {redact_url(spec.storage)} is a SQLite file, which {options.nodes} nodes cannot "
            "share safely (file locks over a network file system fail). Fix: --storage-file with a postgresql:// "
            "URL, or --nodes 1"
        )
    if not args.dry_run and not args.skip_storage_check:
        check_storage_reachable(spec.storage)  # a SQLite file may not exist yet: the first worker creates it
    folder = (Path(args.output) if args.output else Path("runs") / spec.study_name / "slurm").absolute()
    storage_file = Path(args.storage_file).absolute() if args.storage_file else write_storage_file(folder, spec.storage)
    launch = slurm_launch(
        Path(args.study), spec.study_name, storage_file, options, _worker_options(args), folder,
        python=args.python or sys.executable, submit=not args.dry_run,
        hide_from_jobs=(args.storage_env,) if args.storage_env else (),
    )
    print(f"wrote {launch.worker_script} ({options.nodes} node(s) x {max(options.gpus_per_node, 1)} worker(s)) and "
          f"{launch.report_script}; storage URL in {launch.storage_file} (mode 600)")
    if args.dry_run:
        print("submit with:\n  " + "\n  ".join(launch.submit_commands()))
        return 0
    print(f"submitted worker job {launch.worker_job} and report job {launch.report_job} (after every worker ends)\n"
          f"logs: {launch.folder / 'logs'}\nprogress: sweeper status {shlex.quote(args.study)} --storage-file "
          f"{shlex.quote(str(launch.storage_file))}")
    return 0


def cmd_launch_k8s(args: argparse.Namespace) -> int:
    from .launch import KubernetesOptions, kubernetes_manifest
    from .study import load_study_spec

    spec = load_study_spec(args.study, n_trials=args.n_trials)  # the storage is the Secret's, not the study file's
    options = KubernetesOptions(
        image=args.image, workers=args.workers, gpus_per_worker=args.gpus_per_worker, secret=args.secret,
        namespace=args.namespace, command=tuple(args.entrypoint.split()), workdir=args.workdir, cpu=args.cpu,
        memory=args.memory, with_postgres=args.with_postgres,
    )
    study_file = args.study_in_image or args.study
    manifest = kubernetes_manifest(study_file, spec.study_name, options, _worker_options(args))
    if args.output == "-":
        print(manifest, end="")
        return 0
    output = Path(args.output) if args.output else Path("runs") / spec.study_name / "k8s" / "sweeper.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(manifest, encoding="utf-8")
    print(f"wrote {output}: {options.workers} worker pod(s)"
          f"{' and a PostgreSQL StatefulSet' if options.with_postgres else ''}\n"
          f"first: kubectl create secret generic {options.secret} --from-literal=url='postgresql://...'"
          f"{' --from-literal=password=...' if options.with_postgres else ''}\nthen: kubectl apply -f {output}")
    return 0


def _add_study_arguments(command: argparse.ArgumentParser, runs_trials: bool = True) -> None:
    command.add_argument("study", help="a study file, e.g. studies/default.yaml")
    command.add_argument("--storage", help="storage URL, replacing the study file's (e.g. postgresql://host/db)")
    command.add_argument(
        "--storage-env", metavar="VAR",
        help="read the storage URL from environment variable VAR, which keeps its password out of the process list",
    )
    command.add_argument(
        "--storage-file", metavar="PATH",
        help="read the storage URL from a file only you can read (chmod 600), e.g. on a cluster's shared disk",
    )
    if runs_trials:
        _add_trial_arguments(command)


def _add_trial_arguments(command: argparse.ArgumentParser) -> None:
    """The options of a command that runs trials (or starts workers that do)."""
    command.add_argument("--n-trials", type=int, help="target number of trials, replacing the study file's")
    command.add_argument("--timeout", type=float, dest="timeout_s", help="stop starting trials after this many seconds")
    command.add_argument(
        "--pack", type=int, help="trials each worker trains at once on one base model, replacing the study file's"
    )
    command.add_argument("--heartbeat-interval", type=int, default=10, help="seconds between worker heartbeats")
    command.add_argument(
        "--grace-period", type=int, default=60, help="a trial silent this long is failed and queued again"
    )
    command.add_argument(
        "--allow-changed-inputs", action="store_true",
        help="resume a study although its data, base config, space or fixed values changed (each trial records "
        "the version it ran on; the analysis names the versions)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweeper", description="Hyperparameter sweeps for ORPO + LoRA.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    commands = parser.add_subparsers(dest="command", required=True)

    trial = commands.add_parser("trial", help="train one ORPO + LoRA run from a config file and report its metrics")
    trial.add_argument("config", help="a training config, e.g. configs/tiny.yaml")
    trial.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by dotted key, e.g. --set orpo.learning_rate=1e-4 (repeatable)",
    )
    trial.add_argument("--json", action="store_true", help="print one JSON object: final metrics and curves")
    trial.add_argument("--output-dir", help="trainer output folder (default: a temporary folder)")
    trial.set_defaults(handler=cmd_trial)

    sweep = commands.add_parser("sweep", help="run a study to its target number of trials (resumes a stored one)")
    _add_study_arguments(sweep)
    sweep.add_argument(
        "--workers", type=int, default=None,
        help="worker processes (default: one per visible GPU, 1 without a GPU); workers beyond the GPUs share them",
    )
    sweep.set_defaults(handler=cmd_sweep)

    worker = commands.add_parser("worker", help="join a study from this machine (shared storage: postgresql://)")
    _add_study_arguments(worker)
    worker.add_argument("--no-progress", action="store_true", help="do not print the progress line")
    worker.set_defaults(handler=cmd_worker)

    status = commands.add_parser("status", help="table of a study's trials, Pareto front marked")
    _add_study_arguments(status, runs_trials=False)
    status.add_argument("--json", action="store_true", help="print the rows as JSON")
    status.add_argument("--all", action="store_true",
                        help=f"list every trial (a study of more than {STATUS_ROWS} shows the Pareto front, the "
                             f"running trials and the latest {STATUS_LATEST})")
    status.set_defaults(handler=cmd_status)

    analyze = commands.add_parser("analyze", help="fit, importances, effects and claims of a study (storage only)")
    _add_study_arguments(analyze, runs_trials=False)
    analyze.add_argument("--json", action="store_true", help="print the whole analysis as one JSON object")
    analyze.set_defaults(handler=cmd_analyze)

    report = commands.add_parser("report", help="write the analysis as one self-contained HTML file of plotly figures")
    _add_study_arguments(report, runs_trials=False)
    report.add_argument("-o", "--output", required=True, help="the HTML file to write, e.g. report.html")
    report.set_defaults(handler=cmd_report)

    export = commands.add_parser("export", help="write each Pareto-front trial as a config `sweeper trial` re-runs")
    _add_study_arguments(export, runs_trials=False)
    export.add_argument("-o", "--output", required=True, help="folder for trial-NNNN.yaml files and the manifest")
    export.set_defaults(handler=cmd_export)

    dashboard = commands.add_parser("dashboard", help="serve optuna-dashboard on the study's storage")
    _add_study_arguments(dashboard, runs_trials=False)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, help="port (default 8080, or a free one when 8080 is taken; 0 = any)")
    dashboard.set_defaults(handler=cmd_dashboard)

    replicate = commands.add_parser("replicate", help="re-run the top Pareto trials with other seeds (noise floor)")
    _add_study_arguments(replicate, runs_trials=False)
    replicate.add_argument("--top", type=int, required=True, help="how many Pareto trials, best first objective first")
    replicate.add_argument("--seeds", type=int, required=True, help="how many other seeds per trial")
    replicate.set_defaults(handler=cmd_replicate)

    launch = commands.add_parser("launch", help="start a study's workers through a scheduler: SLURM or Kubernetes")
    schedulers = launch.add_subparsers(dest="scheduler", required=True)
    slurm = schedulers.add_parser(
        "slurm", help="write and submit a SLURM job array of workers (one per GPU on each node) and a report job",
    )
    _add_study_arguments(slurm)
    slurm.add_argument("--nodes", type=int, default=1, help="nodes, one array task each (default 1)")
    slurm.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node, one worker each (0: one CPU worker)")
    slurm.add_argument("--cpus-per-worker", type=int, default=4, help="CPU cores per worker (default 4)")
    slurm.add_argument("--partition", help="SLURM partition")
    slurm.add_argument("--time", help="time limit per job, e.g. 12:00:00 (at the limit, running trials are re-queued)")
    slurm.add_argument("--account", help="SLURM account to charge")
    slurm.add_argument("--mem", help="memory per node, e.g. 64G")
    slurm.add_argument("--setup", action="append", default=[], metavar="LINE",
                       help="a shell line each job runs first, e.g. 'module load cuda' (repeatable)")
    slurm.add_argument("--sbatch-option", action="append", default=[], metavar="OPTION",
                       help="one more #SBATCH option, e.g. --qos=high (repeatable)")
    slurm.add_argument("--python", help="the Python that has sweeper on the nodes (default: this one)")
    slurm.add_argument("-o", "--output", help="folder for the job scripts and logs (default runs/<study>/slurm)")
    slurm.add_argument("--dry-run", action="store_true", help="write the job scripts and print how to submit them")
    slurm.add_argument("--skip-storage-check", action="store_true",
                       help="submit although this machine cannot reach the storage (the nodes can)")
    slurm.set_defaults(handler=cmd_launch_slurm)

    k8s = schedulers.add_parser("k8s", help="write a Kubernetes Indexed Job of workers (and optionally PostgreSQL)")
    k8s.add_argument("study", help="a study file, e.g. studies/default.yaml")
    k8s.add_argument("--image", required=True, help="container image with sweeper, the study file and its data")
    k8s.add_argument("--workers", type=int, default=1, help="worker pods (default 1)")
    k8s.add_argument("--gpus-per-worker", type=int, default=1, help="GPUs per pod (default 1; 0: CPU workers)")
    k8s.add_argument("--secret", default="sweeper-storage", help="Secret whose key `url` holds the storage URL")
    k8s.add_argument("--namespace", help="namespace of the resources")
    k8s.add_argument("--entrypoint", default="sweeper", help="the image's sweeper command (default: sweeper)")
    k8s.add_argument("--workdir", help="working folder in the image, where the study file's paths resolve")
    k8s.add_argument("--study-in-image", help="the study file's path inside the image (default: as given)")
    k8s.add_argument("--cpu", default="4", help="CPU request per pod (default 4)")
    k8s.add_argument("--memory", default="16Gi", help="memory request and limit per pod (default 16Gi)")
    k8s.add_argument("--with-postgres", action="store_true",
                     help="add a PostgreSQL StatefulSet and Service (password from the Secret's key `password`)")
    _add_trial_arguments(k8s)
    k8s.add_argument("-o", "--output", help="the manifest file (default runs/<study>/k8s/sweeper.yaml; - for stdout)")
    k8s.set_defaults(handler=cmd_launch_k8s)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.handler(args), args.debug)


def run() -> None:
    """The `sweeper` command: `main`, then out without the interpreter's teardown (see `exit_without_teardown`)."""
    exit_without_teardown(lambda: main())  # `main` looked up when called: a test may stand in for it


if __name__ == "__main__":
    run()
