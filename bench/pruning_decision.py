"""A worker's first pruning decision on a large study (sweeper/sweep/_intermediate.py `PeerRungs`): CPU seconds and a
digest of the peers' vectors it compared, to compare two checkouts side by side.

    .venv/bin/python bench/pruning_decision.py [--size 10000] [--rounds 3] [--checkouts DIR DIR] [--study DB NAME]

The study: `--size` trials of a real trial's size (bench/study_scale.py --real-trial-size: a real default trial is
trained first, about a minute, and its 50 user attributes and 360 curve points are stored with every trial; about 10
minutes at 10,000 trials), built once in a temporary SQLite file, or an existing one with `--study` (a SQLite file
and the study's name, e.g. one a run of this script kept with `--keep`). The decision: the `dominated` pruner at
rung 0.25, objectives eval_nll_loss and eval_odds_ratio_loss (the stored curves hold both), made by a worker whose
trial cache already holds the study (its sampler read it first; a trial's training and its full collections since),
as a worker's first decision reads every finished peer; then one more, which reads nothing new (what each later rung
of a trial pays). With `--checkouts` each round runs once per checkout in a fresh process, the order alternating;
the digests must agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkouts import compared, measure_alternating  # noqa: E402  (bench/, this script's folder)

REPO = Path(__file__).resolve().parents[1]
PRUNER = ("objectives: [{name: eval_nll_loss}, {name: eval_odds_ratio_loss}]\n"
          "pruner: {name: dominated, rungs: [0.25], min_peers: 4, dominated_fraction: 0.5}")


def measure(database: Path, study_name: str) -> dict:
    import gc

    import optuna

    sys.path.insert(0, str(REPO / "tests"))
    from _known_study import write_study_file

    from sweeper.storage import Storage
    from sweeper.study import load_study_spec
    from sweeper.sweep._intermediate import PeerRungs

    url = f"sqlite:///{database}"
    with tempfile.TemporaryDirectory(prefix="sweeper-decision-") as name:
        study_file = write_study_file(Path(name) / "study.yaml", study_name, url)
        study_file.write_text(study_file.read_text().replace(
            "objectives: [{name: eval_nll_loss}, {name: eval_logp_margin}]", PRUNER))
        spec = load_study_spec(study_file)
    gc.collect()  # as a worker does before its first trial: what was imported is out of the collector's sight
    gc.freeze()
    with Storage.for_reading(url) as storage:
        study = optuna.load_study(study_name=study_name, storage=storage.optuna)
        own_number = len(study.get_trials(deepcopy=False))  # the trial cache, as a worker's sampler filled it
        gc.collect()  # a trial has trained since that read, and its full collections aged the cache
        peers = PeerRungs(spec, storage.curves)
        figures = {}
        for label in ("first", "later"):
            started = time.process_time()
            vectors = peers.vectors(study, 0.25, own_number, 0.1)
            figures[f"{label}_s"] = time.process_time() - started
        figures["peers"] = len(vectors)
        figures["digest"] = hashlib.md5(json.dumps(vectors).encode()).hexdigest()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[REPO])
    parser.add_argument("--study", nargs=2, metavar=("DB", "NAME"), help="an existing SQLite study to decide on")
    parser.add_argument("--keep", type=Path, help="build the study into this SQLite file and keep it")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    folder = tempfile.TemporaryDirectory(prefix="sweeper-decision-study-")
    if args.study:
        database, study_name = Path(args.study[0]).resolve(), args.study[1]
    else:
        import study_scale

        database = (args.keep or Path(folder.name) / "study.db").resolve()
        study_scale.STUDY = study_name = f"decision-{os.getpid()}"
        real = study_scale._train_real_trial(Path(folder.name))
        study_scale.build_known_study(f"sqlite:///{database}", study_name, n_random=args.size - 4,
                                      bulk=study_scale._real_trial(real))
        print(f"# built {args.size} trials of a real trial's size: {database} {study_name}", flush=True)
    print(f"# bench/pruning_decision.py: {database} ({study_name}); CPU s of a worker's first and a later decision")
    results = measure_alternating(
        __file__, ["--measure", str(database), study_name], args.checkouts, args.rounds,
        lambda row: f"first {row['first_s']:.3f} s, later {row['later_s']:.3f} s, {row['peers']} peers, "
                    f"digest {row['digest']}",
    )
    print("\n".join(compared(results, ["first_s", "later_s"], 3, "same vectors")))


if __name__ == "__main__":
    main()
