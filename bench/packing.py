"""Packed trials: the same N trials run solo one after another and packed K at a time, in one run, interleaved.

    .venv/bin/python bench/packing.py [--trials 8] [--packs 2 4 8] [--rounds 3] [--max-steps 48] [--dropout-zero]

The N parameter sets are drawn once (random, `--seed`) from the default study's space (studies/default.yaml) on its
embedded default config, cut to `--max-steps` optimizer steps. Solo runs them one by one as a worker does (base model,
pairs and tokenized data kept between trials); packed K runs them in K threads on one `TrainingPack`, each thread
taking the next trial when its own ends (as a worker's slots do). Each round runs every mode once, in a rotated order
(one round per order), so a slow spell of the machine falls on every mode.

Prints per mode: makespan (median [min, max] over rounds), its ratio to solo within the same round, training samples
per second, peak resident memory (the process's, sampled), the mean trials per shared forward, the largest shared
training step's memory per trial as the pack measured it (its step capacity follows from it) and the step capacity the
pack ended at (`--memory-budget-mb` gives the pack a budget in place of the free memory, to see the cap), and the
largest difference of any final eval metric from the solo run of the same trial. With dropout, packed trials draw other
dropout masks than solo ones and agree only within the seed-to-seed spread. With `--dropout-zero` (LoRA dropout 0)
packed and solo must agree to float rounding, except for trials whose result rounding itself moves: each trial is
also run solo once with its learning rate times (1 + 1e-6), and the largest difference is printed over the trials
that this moves by under 1e-4 ("stable"), with the count of the others. The issue's target: makespan at K = 4
<= 0.5x solo.

`--qwen` (the GPU mode) trains Qwen2-0.5B's architecture with random weights (bench/gpu_orpo_memory.py builds it;
nothing is downloaded) on random-letter pairs of `--pair-tokens` tokens, micro-batches of 1, 2 or 4 pairs, bf16 where
the device has it, and adds training tokens per second of makespan, MFU (6 x base parameters x tokens/s over the
device's bf16 peak, `--peak-flops`) and peak CUDA memory. `--qwen --tiny` runs the same path with small dims on a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import queue
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweeper.study import load_study_spec  # noqa: E402
from sweeper.training import TrialReuse, run_orpo  # noqa: E402
from sweeper.training._models import load_base_model  # noqa: E402
from sweeper.training._pack import TrainingPack  # noqa: E402
from _spread import spread  # noqa: E402  (bench/, this script's folder)

SKIP = ("runtime", "per_second")


def qwen_base(work: Path, tiny: bool, pair_tokens: int, n_pairs: int) -> dict:
    """The GPU mode's base config: a random-weight Qwen2 (0.5B dims, or small ones) and random-letter pairs."""
    from gpu_orpo_memory import QWEN2_0_5B, TINY, build_model_folder, write_pairs

    model = build_model_folder(work / ("tiny" if tiny else "qwen2-0.5b-random"), TINY if tiny else QWEN2_0_5B)
    pairs = write_pairs(work / f"pairs-{pair_tokens}.jsonl", n_pairs, pair_tokens)
    return {
        "model": {"name": str(model)},
        "data": {"source": str(pairs), "validation_fraction": 0.05},
        "orpo": {"max_length": pair_tokens + 8, "per_device_eval_batch_size": 4, "logging_steps": 5},
        "lora": {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"},
    }


def draw_configs(n: int, seed: int, max_steps: int, dropout_zero: bool, base: dict | None = None):
    import optuna

    spec = load_study_spec(REPO / "studies" / "default.yaml")
    if base is not None:
        spec = spec.with_base(base)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    configs = []
    for index in range(n):
        trial = study.ask(spec.distributions())
        params = dict(trial.params)
        if dropout_zero:
            params["lora_dropout"] = 0.0
        config = spec.training_config(params)
        config.orpo.max_steps = max_steps
        config.seed = index
        if base is not None:  # the GPU mode: small micro-batches (where one trial leaves a GPU idle), a safe rate
            config.orpo.per_device_train_batch_size //= 4
            config.orpo.learning_rate = min(config.orpo.learning_rate, 1e-3)
            config.orpo.eval_steps = max_steps
        configs.append(config)
    return configs


class PeakMemory:
    """The process's resident memory, sampled every 50 ms while a mode runs (CUDA's own peak where a GPU is)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        process = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, process.memory_info().rss)

    def __enter__(self):
        self.peak = psutil.Process().memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_solo(configs, work: Path):
    reuse = TrialReuse()
    return [run_orpo(config, work / f"solo-{i}", reuse=reuse) for i, config in enumerate(configs)]


def run_packed(configs, size: int, work: Path, memory_budget: int | None = None, with_counts: bool = False):
    """K threads, each taking the next trial from the queue when its own ends."""
    reuse = TrialReuse()
    pack = TrainingPack(load_base_model(configs[0]), size=size, memory_budget=memory_budget)
    todo: queue.Queue = queue.Queue()
    for index in range(len(configs)):
        todo.put(index)
    results = [None] * len(configs)
    errors = []

    def slot():
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = run_orpo(configs[index], work / f"pack{size}-{index}", reuse=reuse, pack=pack)
            except BaseException as error:  # noqa: BLE001 - reported below, the bench stops
                errors.append((index, error))

    threads = [threading.Thread(target=slot) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"packed K={size}: trial {errors[0][0]} failed") from errors[0][1]
    counts = pack.counts
    step_per_trial = max((took / trials for trials, took in counts.step_memory), default=0.0)
    figures = PackFigures(
        sum(counts.trials_per_forward) / max(1, len(counts.trials_per_forward)), step_per_trial, pack.step_capacity
    )
    return (results, figures, counts) if with_counts else (results, figures)


@dataclass
class PackFigures:
    per_forward: float
    step_bytes_per_trial: float
    step_capacity: int


def trained_tokens(results, pair_tokens: int) -> int:
    """Tokens through the model in training (GPU mode: every sequence is `pair_tokens` long, chosen and rejected)."""
    return sum(r.global_steps * r.effective_batch_size * 2 * pair_tokens for r in results)


def largest_difference(solo, packed) -> float:
    differences = (
        abs(a.eval_metrics[key] - b.eval_metrics[key])
        for a, b in zip(solo, packed)
        for key in a.eval_metrics
        if not any(part in key for part in SKIP)
    )
    return max(differences, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--packs", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dropout-zero", action="store_true")
    parser.add_argument("--lean", action="store_true",
                        help="every trial (solo and packed) with compute.lean_orpo_forward: hidden states, not logits")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--memory-budget-mb", type=float,
                        help="bytes a pack's steps may take, in place of the free memory (shows the step cap)")
    parser.add_argument("--qwen", action="store_true", help="the GPU mode: random-weight Qwen2-0.5B, long pairs")
    parser.add_argument("--tiny", action="store_true", help="with --qwen: small dims, to check the mode on a CPU")
    parser.add_argument("--pair-tokens", type=int, default=512)
    parser.add_argument("--peak-flops", type=float, default=989e12, help="dense bf16 peak (H100/H200 SXM: 989e12)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-packing"))
    args = parser.parse_args()

    import torch

    base = None
    if args.qwen:
        args.work.mkdir(parents=True, exist_ok=True)
        n_pairs = args.trials * args.max_steps * 4 + 64
        base = qwen_base(args.work, args.tiny, args.pair_tokens, n_pairs)
    configs = draw_configs(args.trials, args.seed, args.max_steps, args.dropout_zero, base)
    for config in configs:
        config.compute.lean_orpo_forward = args.lean
    cuda = torch.cuda.is_available()
    modes = ["solo", *[f"K={k}" for k in args.packs]]
    print(f"{platform.node()}: {torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"{args.trials} trials x {args.max_steps} steps, {args.rounds} rounds, dropout "
          f"{'0' if args.dropout_zero else 'as drawn'}{', lean forward' if args.lean else ''}", flush=True)
    run_orpo(configs[0], Path(tempfile.mkdtemp()))  # warm: the built-in model and task on disk, imports done
    stable = list(range(len(configs)))
    if args.dropout_zero:  # which trials rounding alone moves: their packed runs cannot be held to 1e-4
        nudged = []
        for config in configs:
            config = config.model_copy(deep=True)
            config.orpo.learning_rate *= 1 + 1e-6
            nudged.append(config)
        reference = run_solo(configs, Path(tempfile.mkdtemp()))
        moved = [largest_difference([a], [b]) for a, b in zip(reference, run_solo(nudged, Path(tempfile.mkdtemp())))]
        stable = [index for index, spread in enumerate(moved) if spread < 1e-4]
        print(f"rounding check: {len(stable)} of {len(configs)} trials stable; the others move by "
              f"{', '.join(f'{m:.1e}' for m in moved if m >= 1e-4) or '-'} when the learning rate moves by 1e-6",
              flush=True)
    rows = {mode: {"makespan": [], "ratio": [], "samples_s": [], "peak_mb": [], "per_forward": [], "diff": [],
                   "tokens_s": [], "mfu": [], "cuda_peak_gib": [], "step_mb_per_trial": [], "capacity": []}
            for mode in modes}
    base_parameters = None
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for round_index in range(args.rounds):
            order = modes[round_index % len(modes):] + modes[: round_index % len(modes)]
            solo_results = None
            timings = {}
            results = {}
            for mode in order:
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                started = time.perf_counter()
                with PeakMemory() as memory:
                    if mode == "solo":
                        results[mode], figures = run_solo(configs, work / f"r{round_index}"), PackFigures(1.0, 0.0, 1)
                    else:
                        size = int(mode.split("=")[1])
                        budget = int(args.memory_budget_mb * 2**20) if args.memory_budget_mb else None
                        results[mode], figures = run_packed(configs, size, work / f"r{round_index}", budget)
                if cuda:
                    torch.cuda.synchronize()
                timings[mode] = time.perf_counter() - started
                if args.qwen:
                    if base_parameters is None:
                        base_parameters = sum(p.numel() for p in load_base_model(configs[0]).parameters())
                    tokens_s = trained_tokens(results[mode], args.pair_tokens) / timings[mode]
                    rows[mode]["tokens_s"].append(tokens_s)
                    rows[mode]["mfu"].append(6 * base_parameters * tokens_s / args.peak_flops)
                    rows[mode]["cuda_peak_gib"].append(torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0)
                samples = sum(r.train_metrics["train_samples_per_second"] * r.train_metrics["train_runtime"]
                              for r in results[mode])
                rows[mode]["makespan"].append(timings[mode])
                rows[mode]["samples_s"].append(samples / timings[mode])
                rows[mode]["peak_mb"].append(memory.peak / 2**20)
                rows[mode]["per_forward"].append(figures.per_forward)
                rows[mode]["step_mb_per_trial"].append(figures.step_bytes_per_trial / 2**20)
                rows[mode]["capacity"].append(figures.step_capacity)
                extra = ""
                if args.qwen:  # printed as it goes: a run cut short by its time limit still leaves these
                    extra = (f", {rows[mode]['tokens_s'][-1]:.0f} tokens/s, MFU {100 * rows[mode]['mfu'][-1]:.1f}%, "
                             f"peak CUDA {rows[mode]['cuda_peak_gib'][-1]:.2f} GiB")
                print(f"  round {round_index + 1} {mode}: {timings[mode]:.1f} s{extra}", flush=True)
            solo_results = results["solo"]
            for mode in modes:
                rows[mode]["ratio"].append(timings[mode] / timings["solo"])
                rows[mode]["diff"].append(largest_difference([solo_results[i] for i in stable],
                                                             [results[mode][i] for i in stable]))

    print()
    print(f"{'mode':6} {'makespan s':>22} {'/ solo':>20} {'samples/s':>20} {'peak MB':>8} {'per fwd':>7} "
          f"{'step MB/trial':>13} {'cap':>3} {'max diff':>9}")
    for mode in modes:
        row = rows[mode]
        print(f"{mode:6} {spread(row['makespan'], 1):>22} {spread(row['ratio'], 2):>20} "
              f"{spread(row['samples_s'], 0):>20} "
              f"{max(row['peak_mb']):8.0f} {statistics.mean(row['per_forward']):7.2f} "
              f"{max(row['step_mb_per_trial']):13.1f} {min(row['capacity']):3d} {max(row['diff']):9.2e}")
    if args.qwen:
        print(f"\n{'mode':6} {'tokens/s (makespan)':>26} {'MFU':>22} {'peak CUDA GiB':>14}")
        for mode in modes:
            row = rows[mode]
            print(f"{mode:6} {spread(row['tokens_s'], 0):>26} {spread([100 * m for m in row['mfu']], 1) + ' %':>22} "
                  f"{max(row['cuda_peak_gib']):14.2f}")
    if 4 in args.packs:
        ratio = statistics.median(rows["K=4"]["ratio"])
        print(f"\ntarget: makespan at K=4 <= 0.5x solo: {ratio:.2f}x, {'met' if ratio <= 0.5 else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
