"""How far one database goes: N worker processes share one study, each trial writing what a real trial writes.

    .venv/bin/python bench/storage_load.py [--workers 1 2 4 8 16] [--trials-per-worker 10] [--evaluations 20]
        [--backends postgresql sqlite] [--postgres-url URL] [--rounds 1]

Each worker is a separate process that does what `sweeper worker` does around a trial, through sweeper's own storage
code: the storage opened with heartbeats (`open_storage`: the retrying RDBStorage, beat every --heartbeat-interval
s), the trial slot taken (`TrialSlotLock`: PostgreSQL advisory lock or file lock), the target checked
(`trials_toward_target`), a trial created and its parameters drawn from studies/default.yaml's space (random
sampler: the sampler's own cost is not the database's), then no training but the writes of one: `--evaluations`
evaluations, each adding the points logged since the last (12 ORPO metrics on the validation split, 12 on the
training split at 2 logging steps: 36 points; `CurveStore.add`), the final user attributes (`record_trial_result`)
and the whole curve replaced once more (`CurveStore.write`), then the values told. The trial slot is held only while
a trial is created, as in the worker.

Printed per backend and N: trials/s (from the moment every worker is connected to the last trial stored), latency p50/p99 of each write (create = from asking for a
trial to its objective starting: the trial row created and the sampler's read of the study; curves = one evaluation's points; attrs = the final user
attributes; tell = the finished trial stored; slot = waiting for the trial slot, which one worker at a time holds
from its target check until its new trial exists), errors (any exception in a worker), and the check that matters most:
trials lost (a trial not COMPLETE, or a COMPLETE trial whose stored curve misses points) and doubled (more COMPLETE
trials than the target, two trials with the same parameters, or a curve point stored twice); both must be 0.
For PostgreSQL it also prints the peak number of connections the workers held (against max_connections).
The machine's cores bound what N processes can do: on a 2-core machine, beyond 2 workers the figures show CPU
contention as much as the database.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_POSTGRES = os.environ.get("SWEEPER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TRAIN_POINTS_PER_EVALUATION = 2  # logging steps between evaluations


def _points(evaluation: int, train_logs: int):
    from sweeper.metrics import EVAL, ORPO_METRICS, TRAIN, CurvePoint

    step = (evaluation + 1) * train_logs
    points = [CurvePoint(step, EVAL, metric, 0.5 + 0.01 * evaluation) for metric in ORPO_METRICS]
    for offset in range(train_logs):
        points += [CurvePoint(step - offset, TRAIN, metric, 0.6 - 0.01 * evaluation) for metric in ORPO_METRICS]
    return points


def _worker(
    url: str, study_name: str, target: int, evaluations: int, heartbeat_s: int, seed: int, out: str, start
) -> None:
    import optuna

    from sweeper.metrics import TrialResult
    from sweeper.storage import CurveStore, TrialSlotLock, library_versions, open_storage, record_trial_result
    from sweeper.study import load_study_spec
    from sweeper.sweep import trials_toward_target

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spec = load_study_spec(REPO / "studies" / "default.yaml")
    storage = open_storage(url, heartbeat_s, max(6 * heartbeat_s, 30))
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(seed))
    curves, slot = CurveStore(url), TrialSlotLock(url, study_name)
    versions = library_versions()
    latencies: dict[str, list[float]] = {"slot": [], "create": [], "curves": [], "attrs": [], "tell": []}
    errors: list[str] = []
    marks: dict[str, float] = {}

    def objective(trial: optuna.Trial) -> list[float]:
        latencies["create"].append(time.perf_counter() - marks["asked"])
        slot.release()  # the trial exists and counts: others may create theirs
        spec.space.suggest(trial)
        points = []
        for evaluation in range(evaluations):
            new = _points(evaluation, TRAIN_POINTS_PER_EVALUATION)
            started = time.perf_counter()
            curves.add(study_name, trial.number, new)
            latencies["curves"].append(time.perf_counter() - started)
            points += new
        result = TrialResult(
            train_metrics={"loss": 0.5, "train_runtime": 1.0}, eval_metrics={"eval_loss": 0.5, "eval_nll_loss": 0.4},
            curves=points, runtime_s=1.0, effective_batch_size=8, global_steps=evaluations * 2,
        )
        started = time.perf_counter()
        trial.set_user_attr("training_config", {"orpo": dict(trial.params)})
        record_trial_result(trial, result, config_hash=uuid.uuid4().hex, library_versions=versions)
        latencies["attrs"].append(time.perf_counter() - started)
        curves.write(study_name, trial.number, points)
        marks["returned"] = time.perf_counter()
        return [0.4 + 0.001 * trial.number, 0.1]

    done = 0
    start.wait()  # every worker imported and connected: the clock starts for all at once
    while True:
        started = time.perf_counter()
        slot.acquire()
        latencies["slot"].append(time.perf_counter() - started)
        try:
            if trials_toward_target(study) >= target:
                break
            marks["asked"] = time.perf_counter()
            study.optimize(objective, n_trials=1)
            latencies["tell"].append(time.perf_counter() - marks["returned"])
            done += 1
        except Exception as error:  # counted and shown: a storage error must not pass silently
            errors.append(f"{type(error).__name__}: {error}"[:300])
        finally:
            slot.release()
    slot.close()
    curves.close()
    Path(out).write_text(json.dumps({"done": done, "latencies": latencies, "errors": errors, "ended": time.time()}))


def _check(url: str, study_name: str, target: int, evaluations: int) -> dict[str, int]:
    import optuna
    import sqlalchemy

    from sweeper.storage import CURVES_TABLE, resolve_storage_url

    study = optuna.load_study(study_name=study_name, storage=resolve_storage_url(url))
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    expected_points = len({(p.split, p.metric, p.step) for e in range(evaluations)
                           for p in _points(e, TRAIN_POINTS_PER_EVALUATION)})
    engine = sqlalchemy.create_engine(resolve_storage_url(url))
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text(
            f"SELECT trial_number, count(*), count(DISTINCT split || '/' || metric || '/' || step) FROM {CURVES_TABLE} "
            "WHERE study_name = :name GROUP BY trial_number"), {"name": study_name}).all()
    engine.dispose()
    stored = {number: (total, distinct) for number, total, distinct in rows}
    short = sum(1 for t in complete if stored.get(t.number, (0, 0))[1] < expected_points)
    unfinished = len(trials) - len(complete)
    parameters = [tuple(sorted(t.params.items())) for t in complete]
    return {
        "lost": unfinished + short + max(0, target - len(complete)),
        "doubled": max(0, len(complete) - target) + (len(parameters) - len(set(parameters)))
        + sum(total - distinct for total, distinct in stored.values()),
    }


def run(backend: str, url: str, workers: int, trials_per_worker: int, evaluations: int, heartbeat_s: int) -> dict:
    import optuna

    from sweeper.storage import CurveStore, open_storage, resolve_storage_url

    study_name = f"load-{backend}-{workers}-{uuid.uuid4().hex[:8]}"
    target = workers * trials_per_worker
    optuna.create_study(study_name=study_name, storage=open_storage(url), directions=["minimize", "maximize"])
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        outs = [str(Path(scratch) / f"w{index}.json") for index in range(workers)]
        start = context.Barrier(workers + 1)
        processes = [
            context.Process(target=_worker, args=(url, study_name, target, evaluations, heartbeat_s, index, out, start))
            for index, out in enumerate(outs)
        ]
        for process in processes:
            process.start()
        connections = _ConnectionCount(url) if backend == "postgresql" else None
        start.wait()
        started = time.time()
        for process in processes:
            process.join()
        peak_connections = connections.stop() if connections else None
        reports = [json.loads(Path(out).read_text()) if Path(out).exists() else None for out in outs]
        wall = max(report["ended"] for report in reports if report) - started
    crashed = sum(1 for report in reports if report is None)
    reports = [report for report in reports if report]
    latencies = {key: sorted(v for report in reports for v in report["latencies"][key]) for key in reports[0]["latencies"]}
    result = {
        "backend": backend, "workers": workers, "target": target, "wall_s": wall,
        "trials_per_s": sum(report["done"] for report in reports) / wall,
        "errors": sum(len(report["errors"]) for report in reports) + crashed,
        "connections": peak_connections,
        "first_error": next((e for report in reports for e in report["errors"]), ""),
        **{f"{key}_ms": (1000 * _quantile(values, 0.5), 1000 * _quantile(values, 0.99)) for key, values in latencies.items()},
        **_check(url, study_name, target, evaluations),
    }
    optuna.delete_study(study_name=study_name, storage=resolve_storage_url(url))
    with CurveStore(url) as curves:
        curves.delete_study(study_name)
    return result


class _ConnectionCount:
    """The most connections the database had open while the workers ran, less those open before (sampled 5 times
    a second from pg_stat_activity): what N workers cost against the server's max_connections."""

    def __init__(self, url: str):
        import threading

        import sqlalchemy

        from sweeper.storage import resolve_storage_url

        self._engine = sqlalchemy.create_engine(resolve_storage_url(url), poolclass=sqlalchemy.NullPool)
        self._connection = self._engine.connect()
        self._before = self._count() - 1  # this sampler's own connection is not the workers'
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _count(self) -> int:
        import sqlalchemy

        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        count = self._connection.execute(sqlalchemy.text(query)).scalar_one()
        self._connection.commit()
        return count - 1

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._count() - self._before)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self._connection.close()
        self._engine.dispose()
        return self.peak


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--trials-per-worker", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=20)
    parser.add_argument("--heartbeat-interval", type=int, default=10)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every (backend, N) this often, interleaved")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.trials_per_worker} trials per worker, {args.evaluations} evaluations of "
          f"{len(_points(0, TRAIN_POINTS_PER_EVALUATION))} points per trial")
    header = (f"{'backend':10} {'N':>3} {'trials':>6} {'trials/s':>9} {'slot p50/p99 ms':>16} {'create p50/p99':>15} "
              f"{'curves p50/p99':>15} "
              f"{'attrs p50/p99':>14} {'tell p50/p99':>13} {'conns':>5} {'errors':>6} {'lost':>4} {'doubled':>7}")
    print(header)
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for workers in args.workers:
                for backend in args.backends:  # interleaved: both backends see the same machine state
                    url = args.postgres_url if backend == "postgresql" else f"sqlite:///{scratch}/load-{round_index}-{workers}.db"
                    r = run(backend, url, workers, args.trials_per_worker, args.evaluations, args.heartbeat_interval)
                    pair = lambda key: f"{r[key][0]:.0f}/{r[key][1]:.0f}"  # noqa: E731
                    print(f"{backend:10} {workers:>3} {r['target']:>6} {r['trials_per_s']:>9.2f} {pair('slot_ms'):>16} "
                          f"{pair('create_ms'):>15} "
                          f"{pair('curves_ms'):>15} {pair('attrs_ms'):>14} {pair('tell_ms'):>13} "
                          f"{'-' if r['connections'] is None else r['connections']:>5} {r['errors']:>6} "
                          f"{r['lost']:>4} {r['doubled']:>7}" + (f"  first error: {r['first_error']}" if r["errors"] else ""),
                          flush=True)


if __name__ == "__main__":
    main()
