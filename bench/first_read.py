"""A worker's first read of a large study: Optuna's own read of every trial (ORM objects) against sweeper's column
read (sweeper/storage/_optuna_internals.py, `read_trials_as_optuna`), side by side on the same study.

    .venv/bin/python bench/first_read.py [--size 3000] [--rounds 3] [--storage postgresql+psycopg2://...]

One study of `--size` trials of a real trial's size (bench/study_scale.py --real-trial-size: a real default trial
is trained first, about a minute, and its 50 user attributes and 360 curve points are stored with every trial) is
built once. Then, `--rounds` times with the order alternating, each way of reading runs in a fresh forked process on
sweeper's storage (the only difference: its `_get_trials` is Optuna's RDBStorage's, or sweeper's):
  full read         `storage.get_all_trials(study)`: what Optuna's trial cache does first in every process
  first suggestion  a TPE `study.ask` on a freshly loaded study, as a joining worker's first trial makes it
CPU s, wall s and the process's peak resident MB (the forked process starts with this one's pages) are printed per
round, then per measure the median [min, max] of columns / Optuna within rounds. The two reads must give the same
trials: the bench checks that every trial's fields agree.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's sweeper, whichever one the environment installed
sys.path.insert(0, str(REPO / "bench"))

import study_scale  # noqa: E402  (its study builder, real trial and forked measurement)
from _spread import spread  # noqa: E402  (bench/, this script's folder)

READS = ("optuna", "columns")


def _storage(url: str, read: str):
    import functools

    import optuna

    from sweeper.storage import Storage

    storage = Storage.for_reading(url)
    if read == "optuna":  # Optuna's own read, the rest of sweeper's storage unchanged
        storage.optuna._get_trials = functools.partial(optuna.storages.RDBStorage._get_trials, storage.optuna)
    return storage


def _measure(url: str, read: str, size: int) -> dict:
    import optuna

    from sweeper.study import SamplerSpec, build_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures = {}
    with _storage(url, read) as storage:
        study_id = storage.optuna.get_study_id_from_name(study_scale.STUDY)
        started_cpu, started = time.process_time(), time.perf_counter()
        trials = storage.optuna.get_all_trials(study_id, deepcopy=False)
        figures["full read"] = (time.process_time() - started_cpu, time.perf_counter() - started)
        fields = [repr({**vars(t), "_user_attrs": sorted(t.user_attrs.items()),
                        "_system_attrs": sorted(t.system_attrs.items()),
                        "intermediate_values": sorted(t.intermediate_values.items())})
                  for t in trials if t.number < size]  # the study as built: each suggestion adds a trial
        figures["digest"] = hash(tuple(fields))
        distributions = next(t for t in reversed(trials) if t.state.name == "COMPLETE").distributions
        del trials, fields
        study = optuna.load_study(study_name=study_scale.STUDY, storage=storage.optuna,
                                  sampler=build_sampler(SamplerSpec(name="tpe", seed=0), 2))
        started_cpu, started = time.process_time(), time.perf_counter()
        trial = study.ask(distributions)
        figures["first suggestion"] = (time.process_time() - started_cpu, time.perf_counter() - started)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    figures["peak MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--storage", help="a PostgreSQL URL to build the study in (deleted after); default SQLite")
    args = parser.parse_args()
    print(f"# bench/first_read.py: {os.cpu_count()} cores; command: .venv/bin/python bench/first_read.py "
          + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="sweeper-first-read-") as name:
        folder = Path(name)
        bulk_from = study_scale._train_real_trial(folder)
        url = args.storage or f"sqlite:///{folder / 'study.db'}"
        study_scale._in_child(lambda: study_scale._build(url, args.size, bulk_from))
        print(f"# {args.size} trials of a real trial's size, {'PostgreSQL' if args.storage else 'SQLite'}; "
              "CPU s (wall s) per measure, peak MB per process")
        rounds = []
        try:
            for index in range(args.rounds):
                order = READS if index % 2 == 0 else READS[::-1]
                results = {read: study_scale._in_child(lambda read=read: _measure(url, read, args.size)) for read in order}
                if results["optuna"]["digest"] != results["columns"]["digest"]:
                    sys.exit("the two reads gave different trials")
                rounds.append(results)
                for read in order:
                    figures = results[read]
                    print(f"round {index + 1} {read:8s} full read {figures['full read'][0]:.2f} s "
                          f"({figures['full read'][1]:.2f} s); first suggestion {figures['first suggestion'][0]:.2f} s "
                          f"({figures['first suggestion'][1]:.2f} s); peak {figures['peak MB']:.0f} MB", flush=True)
        finally:
            if args.storage:
                study_scale._in_child(lambda: study_scale._delete(url))
    print(f"## over {len(rounds)} rounds, median [min, max]: columns / Optuna, CPU s")
    for measure in ("full read", "first suggestion"):
        ratios = [r["columns"][measure][0] / r["optuna"][measure][0] for r in rounds]
        print(f"{measure}: Optuna {spread([r['optuna'][measure][0] for r in rounds])} s, columns "
              f"{spread([r['columns'][measure][0] for r in rounds])} s, ratio {spread(ratios)}")
    ratios = [r["columns"]["peak MB"] / r["optuna"]["peak MB"] for r in rounds]
    print(f"peak MB: Optuna {spread([r['optuna']['peak MB'] for r in rounds])}, columns "
          f"{spread([r['columns']['peak MB'] for r in rounds])}, ratio {spread(ratios)}")


if __name__ == "__main__":
    main()
