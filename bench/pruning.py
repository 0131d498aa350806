"""Pruning: training steps spent to reach a share of the final hypervolume, with and without the dominated pruner.

    .venv/bin/python bench/pruning.py [--trials 12] [--pruned-trials 24] [--seeds 0 1 2] [--max-steps 24]
                                      [--eval-steps 4] [--rungs 0.25 0.5] [--min-peers 4] [--dominated-fraction 0.5]

For each seed the default study (studies/default.yaml: six hyperparameters, eval_nll_loss down, eval_logp_margin up,
TPE) runs twice on the embedded default config cut to `--max-steps` optimizer steps and evaluated every
`--eval-steps`, each run a `sweeper sweep` process of its own with the same sampler and seed:
  full    `--trials` trials without pruning; the optimizer steps they spend are the budget
  pruned  up to `--pruned-trials` trials with `pruner: {name: dominated, ...}`, counted while their steps fit the
          budget: the pruned run gets the same steps, and spends what pruning saves on further trials
Trials are taken in the order they finished; a trial spends its optimizer steps (a pruned one up to where it
stopped); the hypervolume after it is that of the completed trials so far, against one reference point for every
run (see bench/_studies.py).
Printed per seed and run: trials counted and how many were pruned, wall time, steps spent, steps spent to reach 95%
and 98% of the FULL run's final hypervolume (`-`: never), final hypervolume and its share of the full run's. Then,
per seed, the ratio pruned/full of the steps to 95% and to 98%. Target: <= 0.5 to reach 98%.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _studies import common_reference, finished_trace, hypervolume_history, run_sweep, steps_to, write_default_study

SHARES = (0.95, 0.98)


def rung(text: str) -> float | int:
    """`0.25` is a fraction of the schedule, `8` a step count, as in a study file."""
    return int(text) if text.isdigit() else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--pruned-trials", type=int, default=24, help="cap on the pruned run's trials")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=24)
    parser.add_argument("--eval-steps", type=int, default=4)
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "nsga2", "gp", "random"])
    parser.add_argument("--rungs", type=rung, nargs="+", default=[0.25, 0.5], help="fractions or steps")
    parser.add_argument("--min-peers", type=int, default=4)
    parser.add_argument("--dominated-fraction", type=float, default=0.5)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sweeper-pruning-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench/pruning.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/pruning.py " + " ".join(sys.argv[1:]))
    print(f"# {args.trials} trials x {args.max_steps} steps per run, {args.sampler}; work folder {work}")
    pruner = {"name": "dominated", "rungs": args.rungs, "min_peers": args.min_peers,
              "dominated_fraction": args.dominated_fraction}
    print(f"# pruner: {pruner}")

    stamp = int(time.time())
    runs = {}
    for seed in args.seeds:
        for pruned in (False, True):
            name = f"pruning-{stamp}-seed{seed}-{'pruned' if pruned else 'full'}"
            study_file = write_default_study(
                work, name, args.max_steps, args.eval_steps,
                n_trials=args.pruned_trials if pruned else args.trials,
                sampler={"name": args.sampler, "seed": seed}, pruner=pruner if pruned else {"name": "none"},
            )
            wall_s, study = run_sweep(study_file)
            runs[seed, pruned] = (wall_s, finished_trace(study))
    reference = common_reference([trace for _, trace in runs.values()])

    def shown(value) -> str:
        return "-" if value is None else str(value)

    print(f"{'seed':>4} {'run':>6} {'trials':>6} {'pruned':>6} {'wall_s':>7} {'steps':>6} {'to95%':>6} {'to98%':>6} "
          f"{'final_hv':>9} {'hv/full':>7}")
    ratios = {share: [] for share in SHARES}
    for seed in args.seeds:
        full_trace = runs[seed, False][1]
        budget = sum(steps for steps, _, _ in full_trace)
        full = hypervolume_history(full_trace, reference)
        final = full[-1][1]
        for pruned in (False, True):
            wall_s, trace = runs[seed, pruned]
            if pruned:
                counted, spent = [], 0
                for entry in trace:  # trials while their steps fit the full run's budget
                    if spent + entry[0] > budget:
                        break
                    spent += entry[0]
                    counted.append(entry)
                trace = counted
            history = hypervolume_history(trace, reference)
            to = {share: steps_to(history, share * final) for share in SHARES}
            n_pruned = sum(state == "PRUNED" for _, _, state in trace)
            if pruned:
                for share in SHARES:
                    baseline = steps_to(full, share * final)
                    ratios[share].append(None if to[share] is None else to[share] / baseline)
            print(
                f"{seed:>4} {'pruned' if pruned else 'full':>6} {len(trace):>6} {n_pruned:>6} {wall_s:>7.1f} "
                f"{history[-1][0]:>6} {shown(to[0.95]):>6} {shown(to[0.98]):>6} {history[-1][1]:>9.4g} "
                f"{history[-1][1] / final:>7.3f}"
            )
    for share in SHARES:
        values = ", ".join("not reached" if r is None else f"{r:.2f}" for r in ratios[share])
        print(f"steps to {share:.0%} of the full run's final hypervolume, pruned / full, per seed: {values}")


if __name__ == "__main__":
    main()
