"""The analysis's Gaussian-process surrogates (sweeper/analysis/_shapes.py, _advice.py): how many are fitted, their
CPU seconds and the whole analysis's, on a study of known structure, to compare two checkouts side by side.

    .venv/bin/python bench/surrogate_fits.py [--size 200] [--rounds 3] [--checkouts DIR DIR]
    .venv/bin/python bench/surrogate_fits.py --study STUDY.db NAME ...   # a stored study instead

The study is tests/_known_study.py's at `--size` trials (built once, without training), or a stored SQLite study
(e.g. the 10,000 real-size trials `bench/pruning_decision.py --keep` builds). Each fit is counted where scikit-learn
fits a GaussianProcessRegressor. With `--checkouts` each round runs once per checkout, in a fresh process, the order
alternating. The digest covers what the surrogates decide: every effect's shape, every interaction's verdict and
every piece of advice (its trial, target, parameter and suggested value to 3 digits); equal digests say two
checkouts reach the same conclusions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkouts import compared, measure_alternating  # noqa: E402  (bench/, this script's folder)

REPO = Path(__file__).resolve().parents[1]


def measure(database: Path, study_name: str) -> dict:
    from sklearn.gaussian_process import GaussianProcessRegressor

    from sweeper.analysis import analyze_study

    fits = {"count": 0, "cpu_s": 0.0}
    real_fit = GaussianProcessRegressor.fit

    def counted_fit(self, features, target):
        started = time.process_time()
        try:
            return real_fit(self, features, target)
        finally:
            fits["count"] += 1
            fits["cpu_s"] += time.process_time() - started

    GaussianProcessRegressor.fit = counted_fit
    started = time.process_time()
    analysis = analyze_study(study_name, f"sqlite:///{database}")
    cpu_s = time.process_time() - started
    decided = (
        [(e.parameter, e.target, e.shape) for e in analysis.effects],
        [(i.first, i.second, i.target, i.called) for i in analysis.interactions],
        [(a.trial, a.target, a.parameter, None if a.suggested is None else f"{a.suggested:.3g}")
         for a in analysis.advice],
    )
    return {"cpu_s": cpu_s, "fit_cpu_s": fits["cpu_s"], "fits": fits["count"],
            "digest": hashlib.md5(repr(decided).encode()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="trials of the known study built for the run")
    parser.add_argument("--study", nargs=2, metavar=("DB", "NAME"), help="a stored SQLite study instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[REPO])
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    folder = tempfile.TemporaryDirectory()
    if args.study:
        database, study_name = Path(args.study[0]).resolve(), args.study[1]
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from _known_study import build_known_study

        database, study_name = Path(folder.name) / "known.db", "known"
        build_known_study(f"sqlite:///{database}", study_name, n_random=args.size - 4)
    print(f"# bench/surrogate_fits.py: {database.name} ({study_name}); CPU s of the analysis and of its GP fits")
    results = measure_alternating(
        __file__, ["--measure", str(database), study_name], args.checkouts, args.rounds,
        lambda row: (f"analysis {row['cpu_s']:.2f} s, {row['fits']} fits {row['fit_cpu_s']:.2f} s, "
                     f"digest {row['digest']}"),
    )
    print("\n".join(compared(results, ["cpu_s", "fit_cpu_s"], 2, "same conclusions")))
    folder.cleanup()


if __name__ == "__main__":
    main()
