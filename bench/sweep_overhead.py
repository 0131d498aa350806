"""Overhead: the same N fixed trials run by sweeper and by a naive sweep that builds everything from scratch per trial.

    .venv/bin/python bench/sweep_overhead.py [--trials 4] [--max-steps 48] [--seed 0] [--rounds 1] \
        [--variants sweeper loop process]

The N parameter sets are drawn once (random, `--seed`) from the default study's space (studies/default.yaml: learning
rate, batch size, accumulation, LoRA dropout, weight decay, beta) on the embedded default config, cut to
`--max-steps` optimizer steps, evaluated every 12 steps and before training, on the same 128 validation pairs.
  sweeper  `sweeper sweep STUDY` in its own process, the N trials enqueued in its study beforehand
  loop     bench/naive_orpo_sweep.py: one Python process, tokenizer, data, model, adapters, trainer built per trial
  process  a shell loop running bench/naive_orpo_sweep.py --index i: a fresh Python process per trial
For each it prints the wall time of the whole command, the time spent in the trial loop (process start-up, study
creation and imports excluded), the sum of the trainers' own train runtimes, and their ratios; then sweeper's wall
time over each naive variant's, as measured and at equal training speed (each wall over its own train runtime: on a
machine shared with other work the training speed drifts between runs, and the training is the same work), and the
seconds per trial spent outside training. With `--rounds R` every variant runs R times, their order alternating
per round, and the spread over the rounds is printed: each variant's fixed cost (wall minus its trial loop) and
sweeper's over the naive variants', taken within each round. Every variant trains the same trials with the same
seeds, so their final eval losses must agree; the largest difference is printed as a check that the work was the
same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweeper.config import read_yaml_mapping  # noqa: E402
from sweeper.data import synthetic_task_files  # noqa: E402
from sweeper.model import tiny_model_path  # noqa: E402
from sweeper.storage import open_storage  # noqa: E402
from sweeper.study import load_study_spec  # noqa: E402
from sweeper.sweep import open_study  # noqa: E402
from _spread import spread  # noqa: E402  (bench/, this script's folder)

PYTHON = sys.executable


def write_study(work: Path, n_trials: int, max_steps: int, suffix: str = "") -> Path:
    study = read_yaml_mapping(REPO / "studies" / "default.yaml")
    study.update(
        study_name=f"overhead-{int(time.time())}{suffix}",
        base_config=str(REPO / "configs" / "tiny.yaml"),
        fixed={"orpo.max_steps": max_steps},
        n_trials=n_trials,
        storage=f"sqlite:///{work / 'overhead.db'}",
    )
    path = work / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def draw_trials(spec, n_trials: int, seed: int) -> list[dict]:
    draws = optuna.create_study(directions=spec.directions, sampler=optuna.samplers.RandomSampler(seed=seed))
    params = []
    for _ in range(n_trials):
        trial = draws.ask()
        spec.space.suggest(trial)
        params.append(dict(trial.params))
        draws.tell(trial, [0.0] * len(spec.directions))
    return params


def naive_plan(spec, params: list[dict]) -> dict:
    trials = []
    for values in params:
        config = spec.training_config(values)
        hp = {**config.orpo.model_dump(), **config.lora.model_dump(), "seed": config.seed}
        trials.append(hp)
    files = synthetic_task_files(spec.training_config(params[0]).data.builtin)
    return {"model": str(tiny_model_path()), "train": str(files["train"]), "eval": str(files["validation"]), "trials": trials}


def timed(command: str) -> float:
    started = time.perf_counter()
    finished = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"{command} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    return wall_s


def run_sweeper(study_file: Path, spec, params: list[dict]) -> dict:
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    for values in params:
        study.enqueue_trial(values)
    wall_s = timed(f"{shlex.quote(PYTHON)} -m sweeper.cli sweep {shlex.quote(str(study_file))}")
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    states = {trial.state.name for trial in trials}
    if states != {"COMPLETE"} or len(trials) != len(params):
        sys.exit(f"sweeper's trials ended {states}, {len(trials)} of {len(params)}")
    loop_s = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {
        "wall_s": wall_s,
        "loop_s": loop_s,
        "train_s": sum(t.user_attrs["train_runtime"] for t in trials),
        "eval_loss": [t.user_attrs["eval_loss"] for t in trials],
    }


def read_naive(results: Path, wall_s: float) -> dict:
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    trials = sorted((row for row in rows if "index" in row), key=lambda row: row["index"])
    loops = [row["loop_s"] for row in rows if "loop_s" in row]
    return {
        "wall_s": wall_s,
        "loop_s": loops[0] if loops else sum(row["trial_s"] for row in trials),
        "train_s": sum(row["train_runtime"] for row in trials),
        "eval_loss": [row["eval_loss"] for row in trials],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=["sweeper", "loop", "process"],
                        choices=["sweeper", "loop", "process"])
    parser.add_argument("--rounds", type=int, default=1, help="repeat every variant, interleaved, this many times")
    parser.add_argument("--work", type=Path, default=None, help="folder for the study, plan and results")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sweeper-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# bench/sweep_overhead.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/sweep_overhead.py " + " ".join(sys.argv[1:]))

    study_file = write_study(work, args.trials, args.max_steps)
    spec = load_study_spec(study_file)
    params = draw_trials(spec, args.trials, args.seed)
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps(naive_plan(spec, params), indent=1))
    naive = f"{shlex.quote(PYTHON)} bench/naive_orpo_sweep.py {shlex.quote(str(plan_file))}"
    print(f"# {args.trials} trials x {args.max_steps} steps, {args.rounds} round(s), the variants' order alternating "
          f"per round; work folder {work}")

    rounds: list[dict[str, dict]] = []
    for round_index in range(args.rounds):
        folder = work / f"round-{round_index}"
        folder.mkdir(exist_ok=True)
        round_study = write_study(folder, args.trials, args.max_steps, f"-r{round_index}")
        results: dict[str, dict] = {}
        order = args.variants if round_index % 2 == 0 else args.variants[::-1]
        for variant in order:
            if variant == "sweeper":
                results[variant] = run_sweeper(round_study, load_study_spec(round_study), params)
            elif variant == "loop":
                out = folder / "loop.jsonl"
                results[variant] = read_naive(out, timed(f"{naive} --out {shlex.quote(str(out))}"))
            else:
                out = folder / "process.jsonl"
                indices = " ".join(str(index) for index in range(args.trials))
                loop = f"for i in {indices}; do {naive} --index $i --out {shlex.quote(str(out))} || exit 1; done"
                results[variant] = read_naive(out, timed(f"bash -c {shlex.quote(loop)}"))
        rounds.append({variant: results[variant] for variant in args.variants})
        if args.rounds > 1:
            print(f"## round {round_index + 1} (order: {', '.join(order)})")
        _print_round(rounds[-1], args.trials)
    if args.rounds > 1:
        _print_spread(rounds)


def _fixed(row: dict) -> float:
    return row["wall_s"] - row["loop_s"]


def _over_train(row: dict) -> float:
    return row["wall_s"] / row["train_s"]


def _print_spread(rounds: list[dict[str, dict]]) -> None:
    """Median [min, max] over the rounds: each variant's fixed cost (wall minus its trial loop) and wall over
    training, and sweeper's over each naive variant's, taken within each round."""
    print(f"## over {len(rounds)} rounds: median [min, max]")
    for variant in rounds[0]:
        fixed = [_fixed(r[variant]) for r in rounds]
        over_train = [_over_train(r[variant]) for r in rounds]
        print(f"{variant}: fixed cost (wall - loop) {spread(fixed)} s; wall / train {spread(over_train)}")
    if "sweeper" in rounds[0]:
        for variant in (v for v in rounds[0] if v != "sweeper"):
            fixed = [_fixed(r["sweeper"]) / _fixed(r[variant]) for r in rounds]
            normalized = [_over_train(r["sweeper"]) / _over_train(r[variant]) for r in rounds]
            print(f"sweeper / {variant}: fixed cost {spread(fixed)}; "
                  f"wall at equal training speed {spread(normalized)}")


def _print_round(results: dict[str, dict], n_trials: int) -> None:
    print(f"{'variant':<8} {'wall_s':>8} {'loop_s':>8} {'train_s':>8} {'wall/train':>10} {'loop/train':>10}")
    for variant, row in results.items():
        print(
            f"{variant:<8} {row['wall_s']:>8.1f} {row['loop_s']:>8.1f} {row['train_s']:>8.1f} "
            f"{row['wall_s'] / row['train_s']:>10.3f} {row['loop_s'] / row['train_s']:>10.3f}"
        )
    if "sweeper" in results:
        sweeper = results["sweeper"]
        for variant in ("loop", "process"):
            if variant in results:
                naive = results[variant]
                ratio = sweeper["wall_s"] / naive["wall_s"]
                # the training is the same work: at equal training speed the wall ratio would be this one
                normalized = (sweeper["wall_s"] / sweeper["train_s"]) / (naive["wall_s"] / naive["train_s"])
                print(f"sweeper wall / {variant} wall: {ratio:.3f} (at equal training speed: {normalized:.3f})")
        per_trial = {variant: (row["wall_s"] - row["train_s"]) / n_trials for variant, row in results.items()}
        print("seconds per trial outside the trainers' train runtime: "
              + ", ".join(f"{variant} {seconds:.2f}" for variant, seconds in per_trial.items()))
    losses = [row["eval_loss"] for row in results.values()]
    if len(losses) > 1:
        gap = max(abs(a - b) for other in losses[1:] for a, b in zip(losses[0], other))
        print(f"largest difference in final eval_loss between variants: {gap:.2e}")


if __name__ == "__main__":
    main()
