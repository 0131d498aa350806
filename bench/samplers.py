"""Samplers: hypervolume after K trials of the default study for TPE, NSGA-II, GP and random, over several seeds.

    .venv/bin/python bench/samplers.py [--trials 16] [--seeds 0 1] [--max-steps 24] [--eval-steps 8]
                                       [--samplers tpe nsga2 gp random] [--population-size 6]

Each (sampler, seed) runs the default study (studies/default.yaml: six hyperparameters, eval_nll_loss down,
eval_logp_margin up) for `--trials` trials in a `sweeper sweep` process of its own, on the embedded default config
cut to `--max-steps` optimizer steps (0: the config's own 144). TPE and GP keep Optuna's 10 random start-up trials;
NSGA-II gets `--population-size` (Optuna's default of 50 would leave it random for the whole budget). Hypervolume is
that of each run's completed trials against one reference point for every run (see bench/_studies.py).
Printed: the hypervolume after K/2 and after K trials for every run, then per sampler the mean and the range over
seeds after K trials.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _studies import common_reference, finished_trace, hypervolume_history, run_sweep, write_default_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-steps", type=int, default=24)
    parser.add_argument("--eval-steps", type=int, default=8)
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "gp", "random"],
                        choices=["tpe", "nsga2", "gp", "random"])
    parser.add_argument("--population-size", type=int, default=6)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sweeper-samplers-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench/samplers.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/samplers.py " + " ".join(sys.argv[1:]))
    print(f"# {args.trials} trials x {args.max_steps or 'all'} steps per run; work folder {work}")

    stamp = int(time.time())
    runs = {}
    for sampler in args.samplers:
        options = {"population_size": args.population_size} if sampler == "nsga2" else {}
        for seed in args.seeds:
            name = f"samplers-{stamp}-{sampler}-seed{seed}"
            study_file = write_default_study(
                work, name, args.max_steps, args.eval_steps, n_trials=args.trials,
                sampler={"name": sampler, "seed": seed, "options": options},
            )
            wall_s, study = run_sweep(study_file)
            runs[sampler, seed] = (wall_s, finished_trace(study))
    reference = common_reference([trace for _, trace in runs.values()])

    half = args.trials // 2
    print(f"{'sampler':<7} {'seed':>4} {'wall_s':>7} {'hv@' + str(half):>9} {'hv@' + str(args.trials):>9}")
    finals: dict[str, list[float]] = {}
    for (sampler, seed), (wall_s, trace) in runs.items():
        history = hypervolume_history(trace, reference)
        at_half = history[min(half, len(history)) - 1][1]
        finals.setdefault(sampler, []).append(history[-1][1])
        print(f"{sampler:<7} {seed:>4} {wall_s:>7.1f} {at_half:>9.4g} {history[-1][1]:>9.4g}")
    print(f"hypervolume after {args.trials} trials over seeds {args.seeds}:")
    for sampler, values in finals.items():
        print(f"  {sampler:<7} mean {statistics.mean(values):.4g}  min {min(values):.4g}  max {max(values):.4g}")


if __name__ == "__main__":
    main()
