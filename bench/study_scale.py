"""Commands on studies of N trials: CPU seconds and peak memory of `status`, `analyze --json`, `report`, `export`
and a worker's start, and the CPU seconds of a worker's progress line, a pruning decision and a sampler suggestion
(TPE, GP), with the growth exponent between sizes (issue 17's measurement: SQLite, or PostgreSQL with --storage).

    .venv/bin/python bench/study_scale.py [--sizes 100 1000] [--gp-max 1000] [--storage postgresql+psycopg2://...] \
        [--commands status "analyze --json" report export "worker start" "progress line" "pruning decision" \
                    suggestion]

The progress line (what a worker prints after every trial, and a launcher every 2 s) is timed in this process on
the loaded study: its first call (which reads the study) and the next (what each trial pays).

A pruning decision (the `dominated` pruner at rung 0.25, objectives eval_nll_loss and eval_odds_ratio_loss, which
the stored curves hold) is timed in this process, as a worker makes it: its first decision (which reads every
finished peer's curves once) and a later one, after one more trial finished (which reads the running and new
trials only).

A suggestion is what a worker's sampler does for a new trial (`study.ask` with every parameter the stored trials
have), with the sampler the study file would build: TPE (the default, multivariate), and GP on studies of at most
`--gp-max` trials. The first on the loaded study, then a later one (after the first was told).

Each study is the analysis tests' known-structure study (tests/_known_study.py: real Optuna trials with the user
attributes and curves a sweep stores, ~50 curve points each) grown to N trials in a fresh SQLite file, or under a
study name of its own in the PostgreSQL database that --storage names (deleted after its measurements). With
`--real-trial-size` a real trial of the default study is trained first (`sweeper sweep`, one trial, about a minute)
and its every user attribute and curve point is stored with each trial under the planted ones: trials of a real
trial's size (50 attributes and 360 curve points on 2026-12-04) with the known structure. Each command
runs in its own process; CPU seconds are user + system of that process, memory its peak resident set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
SWEEPER = str(Path(sys.executable).parent / "sweeper")

from _known_study import build_known_study, write_study_file  # noqa: E402

COMMANDS = {
    "status": ["status"],
    "analyze --json": ["analyze", "--json"],
    "report": ["report", "-o", "report.html"],
    "export": ["export", "-o", "export"],
    # a worker joining a study whose target is reached: its start (imports, data check, study load, progress line,
    # the dead-trial and target checks) and its exit, without training
    "worker start": ["worker"],
}
DECISIONS = ("pruning decision (first)", "pruning decision (later)")
PROGRESS = ("progress line (first)", "progress line (later)")
# its own name, so that a study built in a shared PostgreSQL database (--storage) never meets another run's
STUDY = f"scale-{os.getpid()}"
SUGGESTIONS = {sampler: (f"{sampler} suggestion (first)", f"{sampler} suggestion (later)") for sampler in ("tpe", "gp")}
WORKERS_FIRST = "tpe suggestion (a worker's first, after its checks)"
IN_PROCESS = {"pruning decision": DECISIONS, "progress line": PROGRESS,
              "suggestion": (*(label for labels in SUGGESTIONS.values() for label in labels), WORKERS_FIRST)}


def _progress_lines(url: str, folder: Path) -> dict[str, tuple[float, float, float]]:
    """CPU s of a worker's progress line: the first (its study read) and a later one (what each trial pays)."""
    import optuna

    from sweeper.storage import Storage
    from sweeper.sweep import read_progress

    figures = {}
    with Storage.for_reading(url) as storage:
        study = optuna.load_study(study_name=STUDY, storage=storage.optuna)
        for name in PROGRESS:
            started_cpu, started = time.process_time(), time.perf_counter()
            progress = read_progress(study, None)
            figures[name] = (time.process_time() - started_cpu, time.perf_counter() - started, float(progress.done))
    return figures


def _pruning_decisions(url: str, folder: Path) -> dict[str, tuple[float, float, float]]:
    """CPU s of a worker's first pruning decision and of a later one (one more trial finished in between)."""
    import gc

    import optuna

    from sweeper.metrics import CurvePoint
    from sweeper.storage import Storage
    from sweeper.study import load_study_spec
    from sweeper.sweep._intermediate import PeerRungs
    from sweeper.sweep._pruning import decide

    study_file = folder / "pruned.yaml"
    study_file.write_text(write_study_file(folder / "tmp.yaml", STUDY, url).read_text().replace(
        "objectives: [{name: eval_nll_loss}, {name: eval_logp_margin}]",
        "objectives: [{name: eval_nll_loss}, {name: eval_odds_ratio_loss}]\n"
        "pruner: {name: dominated, rungs: [0.25], min_peers: 4, dominated_fraction: 0.5}",
    ))
    spec = load_study_spec(study_file)
    figures = {}
    gc.collect()  # as run_worker does before its first trial: what was imported is out of the collector's sight
    gc.freeze()
    with Storage.for_reading(url) as storage:
        study = optuna.load_study(study_name=STUDY, storage=storage.optuna)
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        own = study.ask()
        # Between a worker's read of the study (its checks before the trial) and the trial's first decision, the
        # trainer has collected in full (Trainer.train -> accelerator.free_memory -> gc.collect): the trial cache is
        # old by then, not young objects whose first collections the decision would pay (0.1-0.2 s at 10,000)
        gc.collect()
        peers = PeerRungs(spec, storage.curves)
        for name in DECISIONS:
            started_cpu, started = time.process_time(), time.perf_counter()
            vectors = peers.vectors(study, 0.25, own.number, 0.1)
            decision = decide([2.0, 1.0], vectors, spec.directions, rung=0.25, step=10, min_peers=4,
                              dominated_fraction=0.5)
            figures[name] = (time.process_time() - started_cpu, time.perf_counter() - started, float(len(vectors)))
            assert decision is not None and len(vectors) >= len(finished), (name, len(vectors))
            source = finished[-1]  # one more trial finishes: a copy of the last, its curves included
            study.add_trial(optuna.trial.create_trial(
                params=source.params, distributions=source.distributions, values=source.values,
                user_attrs=source.user_attrs))
            rows = storage.curves.read(STUDY, trial_number=source.number)
            storage.curves.write(STUDY, study.get_trials(deepcopy=False)[-1].number, [
                CurvePoint(row["step"], row["split"], row["metric"], row["value"]) for row in rows])
    return figures


def _suggestions(url: str, folder: Path, gp_max: int) -> dict[str, tuple[float, float, float]]:
    """CPU s of a worker's sampler suggestion (ask, then every parameter the stored trials have), the first on the
    loaded study and a later one (after the first trial was told), for TPE as the default study builds it and for
    GP up to `gp_max` trials (its cost grows with the cube of the trials: the issue saw 5.4 GB and no suggestion
    within 400 s at 5,000). The first on a fresh study object reads the whole study into its trial cache; a worker
    has done that read before its first suggestion, in the checks before every trial (dead workers' trials, the
    target), so TPE's first is also timed after those checks, as the worker makes it."""
    import optuna

    from sweeper.storage import Storage
    from sweeper.study import SamplerSpec, build_sampler, load_study_spec
    from sweeper.sweep._worker import requeue_dead_workers_trials, target_reached

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures = {}
    with Storage.for_reading(url) as storage:
        source = optuna.load_study(study_name=STUDY, storage=storage.optuna)
        completed = source.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        distributions = completed[-1].distributions
        for name, measured in SUGGESTIONS.items():
            if name == "gp" and len(completed) > gp_max:
                continue
            sampler = build_sampler(SamplerSpec(name=name, seed=0), len(source.directions))
            study = optuna.load_study(study_name=STUDY, storage=storage.optuna, sampler=sampler)
            for label in measured:
                started_cpu, started = time.process_time(), time.perf_counter()
                trial = study.ask(distributions)  # what a worker's objective asks, parameter by parameter
                figures[label] = (time.process_time() - started_cpu, time.perf_counter() - started,
                                  float(len(completed)))
                study.tell(trial, completed[-1].values)
        spec = load_study_spec(folder / "study.yaml")
        study = optuna.load_study(study_name=STUDY, storage=storage.optuna,
                                  sampler=build_sampler(SamplerSpec(name="tpe", seed=0), len(source.directions)))
        requeue_dead_workers_trials(study)  # what run_worker does before each trial
        target_reached(study, spec)
        started_cpu, started = time.process_time(), time.perf_counter()
        study.ask(distributions)
        figures[WORKERS_FIRST] = (time.process_time() - started_cpu, time.perf_counter() - started,
                                  float(len(completed)))
    return figures


def _run(arguments: list[str], study_file: Path, folder: Path) -> tuple[float, float, float]:
    """(CPU s, wall s, peak MB) of one command in its own process."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: replace it with the command, output to a file
        with open(folder / "out.txt", "w") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            os.chdir(folder)
            os.execv(SWEEPER, [SWEEPER, arguments[0], str(study_file), *arguments[1:]])
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"sweeper {' '.join(arguments)} failed:\n{(folder / 'out.txt').read_text()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started, usage.ru_maxrss / 1024


def _build(url: str, size: int, bulk_from: Path | None) -> dict:
    bulk = _real_trial(bulk_from) if bulk_from else None
    build_known_study(url, STUDY, n_random=size - 4, bulk=bulk)  # and 2 hand-made, 1 failed, 1 pruned trials
    return {}


def _train_real_trial(folder: Path) -> Path:
    """One trial of the default study, trained by `sweeper sweep` into its own SQLite file; returns the study file."""
    import yaml

    fields = yaml.safe_load((REPO / "studies" / "default.yaml").read_text())
    fields.update(base_config=str(REPO / "configs" / "tiny.yaml"), n_trials=1,
                  storage=f"sqlite:///{folder / 'real.db'}", study_name="real-trial")
    study_file = folder / "real.yaml"
    study_file.write_text(yaml.safe_dump(fields))
    _run(["sweep"], study_file, folder)
    return study_file


def _real_trial(study_file: Path) -> tuple[dict, list]:
    import optuna
    import yaml

    from sweeper.metrics import CurvePoint
    from sweeper.storage import CurveStore

    fields = yaml.safe_load(study_file.read_text())
    (trial,) = optuna.load_study(study_name=fields["study_name"], storage=fields["storage"]).get_trials()
    with CurveStore(fields["storage"]) as curves:
        rows = curves.read(fields["study_name"])
    points = [CurvePoint(row["step"], row["split"], row["metric"], row["value"]) for row in rows]
    return dict(trial.user_attrs), points


def _delete(url: str) -> dict:
    import optuna

    from sweeper.storage import Storage

    with Storage.for_reading(url) as storage:
        optuna.delete_study(study_name=STUDY, storage=storage.optuna)
        storage.curves.delete_study(STUDY)
        if storage.engine.dialect.name == "postgresql":
            # the deleted rows stay on disk as dead tuples until a vacuum: 1.7 GB after a few runs at 10,000 trials
            with storage.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM")
    return {}


def _in_child(work) -> dict:
    """`work()` (a dict of JSON values) in a forked child: this process stays as small as it started, so a command
    forked from it later counts only its own memory (and a pruning decision's imports stay out of it)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        code = 1
        try:
            with os.fdopen(write_end, "w") as out:
                json.dump(work(), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        text = answer.read()
    if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) != 0:
        sys.exit("a measurement in a child process failed (its error is above)")
    return json.loads(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--commands", nargs="+", choices=[*COMMANDS, *IN_PROCESS], default=[*COMMANDS, *IN_PROCESS])
    parser.add_argument("--gp-max", type=int, default=1000, help="largest study the GP sampler is timed on")
    parser.add_argument("--real-trial-size", action="store_true",
                        help="store a real default trial's attributes and curve with every trial (see above)")
    parser.add_argument("--storage", help="a PostgreSQL URL to build the studies in (each deleted after its "
                        "measurements); default: a fresh SQLite file per size")
    args = parser.parse_args()
    names = [c for c in COMMANDS if c in args.commands] + [
        name for measure, measured in IN_PROCESS.items() if measure in args.commands for name in measured]
    results: dict[str, dict[int, tuple[float, float, float]]] = {name: {} for name in names}
    bulk_from = None
    if args.real_trial_size:
        real_folder = tempfile.TemporaryDirectory(prefix="sweeper-real-trial-")  # kept until the bench ends
        bulk_from = _train_real_trial(Path(real_folder.name))
        attrs, points = _in_child(lambda: [len(part) for part in _real_trial(bulk_from)])
        print(f"# every trial carries a real default trial's {attrs} user attributes and {points} curve points")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="sweeper-scale-") as name:
            folder = Path(name)
            url = args.storage or f"sqlite:///{folder / 'study.db'}"
            _in_child(lambda: _build(url, size, bulk_from))
            if not args.storage:
                stored = sum(path.stat().st_size for path in folder.glob("study.db*"))
                print(f"# {size} trials: {stored / 2**20:.0f} MB in SQLite, {stored / size / 1024:.0f} KB a trial",
                      flush=True)
            study_file = write_study_file(folder / "study.yaml", STUDY, url)
            for command in (c for c in COMMANDS if c in args.commands):
                results[command][size] = _run(COMMANDS[command], study_file, folder)
            measures = (("progress line", _progress_lines), ("pruning decision", _pruning_decisions),
                        ("suggestion", lambda url, folder: _suggestions(url, folder, args.gp_max)))
            for measure, measuring in measures:
                if measure in args.commands:
                    for name, figures in _in_child(lambda: measuring(url, folder)).items():
                        results[name][size] = tuple(figures)
            if args.storage:
                _in_child(lambda: _delete(url))
    backend = "PostgreSQL" if args.storage else "SQLite"
    print(f"# bench/study_scale.py: {backend}; CPU s (wall s), peak MB (in this process: a pruning decision, CPU s "
          "(wall s), peers compared; a progress line, CPU s (wall s), trials done; a suggestion, CPU s (wall s), "
          "completed trials); growth = log(CPU ratio) / log(size ratio)")
    print("| command | " + " | ".join(f"{size} trials" for size in args.sizes) + " | growth |")
    print("|---|" + "---|" * len(args.sizes) + "---|")
    small, large = args.sizes[0], args.sizes[-1]
    for command, by_size in results.items():
        unit = "peers" if command in DECISIONS else "done" if command in PROGRESS else (
            "MB" if command in COMMANDS else "trials")
        digits = 1 if command in COMMANDS else 3
        cells = [f"{by_size[s][0]:.{digits}f} s ({by_size[s][1]:.{digits}f} s), {by_size[s][2]:.0f} {unit}"
                 if s in by_size else f"- (not run above --gp-max {args.gp_max})" for s in args.sizes]
        growth = (f"{math.log(by_size[large][0] / by_size[small][0]) / math.log(large / small):.2f}"
                  if small in by_size and large in by_size and large != small else "-")
        print(f"| {command} | " + " | ".join(cells) + f" | {growth} |")


if __name__ == "__main__":
    main()
