"""Pruning strategies side by side: hypervolume reached as training steps are spent (anytime curves), 5+ seeds.

    .venv/bin/python bench/pruning.py [--strategies none dominated multi_metric asha] [--seeds 0 1 2 3 4]
                                      [--trials 16] [--max-steps 40] [--eval-steps 8] [--parallel 2] [--figure F]
                                      [--work DIR [--analyze-only]]

For each seed, the default study (studies/default.yaml: six hyperparameters, eval_nll_loss down, eval_logp_margin up,
TPE with that seed) runs once per strategy, each run a real `sweeper sweep` process on its own SQLite file, on the
embedded default config cut to `--max-steps` optimizer steps and evaluated every `--eval-steps`:
  none          `--trials` trials, every one to the end: their optimizer steps are the BUDGET (trials x max steps)
  dominated     stop a trial half of whose peers dominate it at rung 0.25 or 0.5 (min_peers 4)
  multi_metric  OptunaHub's multi_metric_pruner (vendored): Pareto ranks into MedianPruner, rungs 0.25 and 0.5
  asha          successive halving by Pareto order, reduction factor 3, rungs 1/9 and 1/3 of the schedule
Same STEP budget for all: a pruned run goes on with new trials until its finished trials have spent the budget, then
it is stopped (SIGINT; the trial running then is beyond the budget and not counted). `--parallel` runs share the
cores, one thread each: wall time is not what is measured, steps are.
A trial spends the optimizer steps it ran (a pruned one up to where it stopped). The hypervolume after each finished
trial is Optuna's, of the completed trials so far, against one reference point for every run of every seed.
Printed, per strategy: steps to reach 90/95/98% of the best final hypervolume any strategy reached on that seed, as a
fraction of the budget (median [min, max] over seeds); hypervolume at 25/50/100% of the budget as a share of that
best; trials run and pruned. Then the targets: steps for 98% of the UNPRUNED run's final hypervolume / the budget
(target <= 0.5, median over seeds), and the hypervolume at equal steps against multi_metric's.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from _studies import REPO, common_reference, finished_trace, hypervolume_history, write_default_study

SHARES = (0.90, 0.95, 0.98)
BUDGET_POINTS = (0.25, 0.5, 1.0)
PRUNERS = {
    "none": {"name": "none"},
    "dominated": {"name": "dominated", "rungs": [0.25, 0.5]},
    "multi_metric": {"name": "multi_metric", "rungs": [0.25, 0.5]},
    "asha": {"name": "asha", "reduction_factor": 3},
}
POLL_S = 3.0


class Run:
    """One strategy on one seed: a `sweeper sweep` process, stopped once its finished trials spent the budget."""

    def __init__(self, work: Path, seed: int, strategy: str, args: argparse.Namespace, budget: int):
        self.seed, self.strategy, self.budget = seed, strategy, budget
        folder = work / f"seed{seed}-{strategy}"
        folder.mkdir(parents=True, exist_ok=True)
        cap = args.trials if strategy == "none" else args.trials * args.cap_factor
        self.study_file = write_default_study(
            folder, f"pruning-seed{seed}-{strategy}", args.max_steps, args.eval_steps, n_trials=cap,
            sampler={"name": args.sampler, "seed": seed}, pruner=PRUNERS[strategy],
        )
        self.storage = f"sqlite:///{folder / 'bench.db'}"
        self.log = folder / "sweep.log"
        self.process: subprocess.Popen | None = None
        self.started = self.wall_s = 0.0
        self.stopped_at_budget = False

    def start(self, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        command = [sys.executable, "-m", "sweeper.cli", "sweep", str(self.study_file)]
        self.started = time.perf_counter()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)

    def spent(self) -> int:
        try:
            study = optuna.load_study(study_name=self.study_file.stem, storage=self.storage)
        except KeyError:  # not created yet
            return 0
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        return sum(int(t.user_attrs.get("global_steps", 0)) for t in study.get_trials(deepcopy=False, states=states))

    def poll(self) -> bool:
        """True once the process has ended; stops it when it has spent the budget."""
        assert self.process is not None
        if self.process.poll() is not None:
            self.wall_s = self.wall_s or time.perf_counter() - self.started
            return True
        if self.strategy != "none" and not self.stopped_at_budget and self.spent() >= self.budget:
            self.stopped_at_budget = True
            self.process.send_signal(signal.SIGINT)
        return False

    def trace(self) -> list[tuple]:
        """Finished trials in order, up to the budget (a trial interrupted by the stop is not counted)."""
        counted, spent = [], 0
        for entry in finished_trace(self._study()):
            if spent + entry[0] > self.budget:
                break
            spent += entry[0]
            counted.append(entry)
        return counted

    def wall_to_budget_s(self) -> float:
        """Seconds from the first trial's start to the last counted trial's end (imports and the closing report
        left out): what the steps cost on this machine, per-trial overheads included."""
        trials = [t for t in self._study().get_trials(deepcopy=False) if t.datetime_complete is not None]
        trials.sort(key=lambda t: t.datetime_complete)
        last = trials[len(self.trace()) - 1]
        return (last.datetime_complete - min(t.datetime_start for t in trials)).total_seconds()

    def _study(self) -> optuna.Study:
        return optuna.load_study(study_name=self.study_file.stem, storage=self.storage)


def run_all(runs: list[Run], parallel: int) -> None:
    waiting, running = list(runs), []
    while waiting or running:
        while waiting and len(running) < parallel:
            run = waiting.pop(0)
            run.start(threads=max(1, (os.cpu_count() or 1) // parallel))
            running.append(run)
        time.sleep(POLL_S)
        for run in list(running):
            if run.poll():
                running.remove(run)
                if run.process.returncode not in (0, 130, -signal.SIGINT) and not run.stopped_at_budget:
                    sys.exit(f"seed {run.seed} {run.strategy}: sweep failed ({run.process.returncode}), see {run.log}")
                print(f"#   seed {run.seed} {run.strategy}: {run.wall_s:.0f} s", flush=True)


def volume_at(history: list[tuple[int, float]], steps: float) -> float:
    return max((volume for spent, volume in history if spent <= steps), default=0.0)


def steps_to(history: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, volume in history if volume >= target - 1e-12), None)


def spread(values: list[float | None]) -> str:
    """Median [min, max] over seeds; a seed that never got there counts as infinite and shows as `never`."""
    ranked = sorted(float("inf") if value is None else value for value in values)
    median = statistics.median(ranked)

    def shown(value: float) -> str:
        return "never" if value == float("inf") else f"{value:.2f}"

    if ranked[0] == float("inf"):
        return "never"
    return f"{shown(median)} [{shown(ranked[0])}, {shown(ranked[-1])}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=list(PRUNERS), choices=list(PRUNERS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=16, help="trials of the unpruned run (the budget)")
    parser.add_argument("--cap-factor", type=int, default=5, help="a pruned run's trial cap: trials x this")
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--eval-steps", type=int, default=8)
    parser.add_argument("--sampler", default="tpe", choices=["tpe", "nsga2", "gp", "random"])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--figure", type=Path, default=None, help="write the anytime curves here (plotly HTML)")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--analyze-only", action="store_true",
                        help="read the runs already in --work (same arguments) instead of running them")
    args = parser.parse_args()
    if args.analyze_only and not args.work:
        parser.error("--analyze-only needs --work, the folder of an earlier run")
    if "none" not in args.strategies:
        parser.error("--strategies must include none: its run sets the budget and the targets")
    work = args.work or Path(tempfile.mkdtemp(prefix="sweeper-pruning-"))
    budget = args.trials * args.max_steps
    print(f"# bench/pruning.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/pruning.py " + " ".join(sys.argv[1:]))
    print(f"# budget per run: {budget} optimizer steps ({args.trials} unpruned trials x {args.max_steps} steps, "
          f"evaluated every {args.eval_steps}); {args.sampler}; {len(args.seeds)} seeds; work folder {work}")
    for strategy in args.strategies:
        print(f"#   {strategy}: {PRUNERS[strategy]}")
    # interleaved: each seed's strategies one after another, so a slow spell of the machine hits them all
    runs = [Run(work, seed, strategy, args, budget) for seed in args.seeds for strategy in args.strategies]
    if not args.analyze_only:
        started = time.perf_counter()
        run_all(runs, args.parallel)
        print(f"# all runs: {time.perf_counter() - started:.0f} s")

    traces = {(run.seed, run.strategy): run.trace() for run in runs}
    reference = common_reference(list(traces.values()))
    histories = {key: hypervolume_history(trace, reference) for key, trace in traces.items()}
    best = {seed: max(histories[seed, s][-1][1] for s in args.strategies) for seed in args.seeds}
    unpruned_wall = {run.seed: run.wall_to_budget_s() for run in runs if run.strategy == "none"}

    print()
    header = " ".join(f"{f'to {share:.0%}':>24}" for share in SHARES)
    print(f"{'strategy':<13} {header} " + " ".join(f"{f'hv@{point:.0%}':>7}" for point in BUDGET_POINTS)
          + f" {'trials':>6} {'pruned':>6} {'wall':>5}")
    for strategy in args.strategies:
        cells = []
        for share in SHARES:
            ratios = []
            for seed in args.seeds:
                reached = steps_to(histories[seed, strategy], share * best[seed])
                ratios.append(None if reached is None else reached / budget)
            cells.append(f"{spread(ratios):>24}")
        volumes = [
            statistics.median(volume_at(histories[seed, strategy], point * budget) / best[seed] for seed in args.seeds)
            for point in BUDGET_POINTS
        ]
        trials = statistics.median(sum(state != "FAIL" for _, _, state in traces[seed, strategy])
                                   for seed in args.seeds)
        pruned = statistics.median(sum(state == "PRUNED" for _, _, state in traces[seed, strategy])
                                   for seed in args.seeds)
        wall = statistics.median(
            run.wall_to_budget_s() / unpruned_wall[run.seed] for run in runs if run.strategy == strategy
        )
        print(f"{strategy:<13} {' '.join(cells)} " + " ".join(f"{v:>7.3f}" for v in volumes)
              + f" {trials:>6g} {pruned:>6g} {wall:>5.2f}")
    print("(to X%: steps to reach X% of the best final hypervolume of any strategy on the seed / the budget, median "
          "[min, max] over seeds, a seed that never reached it counted as infinite. hv@X%: hypervolume after X% "
          "of the budget / that best, median. trials, pruned: median per run. wall: seconds to spend the budget / the "
          "unpruned run's, median; runs shared the machine, so a rough figure.)")

    print()
    print("Targets: steps to reach 98% of the UNPRUNED run's final hypervolume, / the budget (target <= 0.5) and / the "
          "steps the unpruned run took to reach it; final hypervolume / multi_metric's at equal steps (target >= 1). "
          "Median [min, max] over seeds.")
    print(f"{'strategy':<13} {'98% / budget':>22} {'98% / unpruned steps':>22} {'hv / multi_metric':>22}")
    for strategy in args.strategies:
        if strategy == "none":
            continue
        ratios, strict, versus = [], [], []
        for seed in args.seeds:
            full = histories[seed, "none"]
            target = 0.98 * full[-1][1]
            reached = steps_to(histories[seed, strategy], target)
            ratios.append(None if reached is None else reached / budget)
            strict.append(None if reached is None else reached / steps_to(full, target))
            if "multi_metric" in args.strategies:
                versus.append(volume_at(histories[seed, strategy], budget)
                              / max(volume_at(histories[seed, "multi_metric"], budget), 1e-300))
        against = spread(versus) if versus and strategy != "multi_metric" else "-"
        print(f"{strategy:<13} {spread(ratios):>22} {spread(strict):>22} {against:>22}")
    per_seed = ", ".join(
        f"seed {seed}: " + " ".join(f"{s}={histories[seed, s][-1][1] / best[seed]:.3f}" for s in args.strategies)
        for seed in args.seeds
    )
    print(f"final hypervolume / best of the seed: {per_seed}")

    if args.figure:
        figure = go.Figure()
        for strategy in args.strategies:
            for seed in args.seeds:
                history = histories[seed, strategy]
                figure.add_trace(go.Scatter(
                    x=[0] + [spent / budget for spent, _ in history],
                    y=[0] + [volume / best[seed] for _, volume in history],
                    mode="lines", line_shape="hv", name=f"{strategy}", legendgroup=strategy,
                    showlegend=seed == args.seeds[0], line={"color": COLORS[strategy]}, opacity=0.7,
                    hovertemplate=f"{strategy}, seed {seed}<br>steps %{{x:.2f}} of budget<br>hv %{{y:.3f}}<extra></extra>",
                ))
        figure.update_layout(
            title=f"Hypervolume as training steps are spent ({len(args.seeds)} seeds, budget {budget} steps)",
            xaxis_title="optimizer steps spent / budget", yaxis_title="hypervolume / best final of the seed",
            template="plotly_white",
        )
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        figure.write_html(args.figure, include_plotlyjs="cdn")
        print(f"figure: {args.figure}")


COLORS = {"none": "#444444", "dominated": "#1f77b4", "multi_metric": "#d62728", "asha": "#2ca02c"}


if __name__ == "__main__":
    main()
