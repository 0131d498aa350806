"""What a pack's memory measure costs and what it measures: the same K trials packed with the step measure on and
off, in one run, alternating, over several rounds.

    .venv/bin/python bench/pack_memory.py [--trials 4] [--rounds 4] [--max-steps 24] [--seed 0]

The trials are drawn as bench/packing.py draws them (the default study's space, its embedded config, `--seed`) and
trained packed all at once (K = --trials). "measured" is the pack as it runs in a worker: at every shared training
step it counts what the step holds (on the CPU, the tensors autograd keeps for the backward, through a saved-tensors
hook, and the logits) and cuts its step capacity to what the free memory fits. "unmeasured" is the same pack with that
hook replaced by nothing (the only part of the measure with a cost on the CPU; CUDA reads the allocator's counter).

Prints each round's makespans, the ratio measured / unmeasured per round (median [min, max]), each shared training
step's memory per trial (median [min, max] over the steps, by how many trials the step held) and the step capacity
that the machine's free memory gives.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import psutil  # noqa: E402
from packing import draw_configs, fmt, run_packed  # noqa: E402

import sweeper.training._pack as pack_module  # noqa: E402


class _Unmeasured(contextlib.nullcontext):
    bytes = 0

    def __init__(self, model):
        super().__init__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4, help="trials, all packed at once (K)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    configs = draw_configs(args.trials, args.seed, args.max_steps, dropout_zero=False)
    print(f"{args.trials} trials x {args.max_steps} steps packed at once, micro-batches "
          f"{[c.orpo.per_device_train_batch_size for c in configs]}, {args.rounds} rounds", flush=True)
    measure = pack_module._KeptForBackward
    makespans: dict[str, list[float]] = {"measured": [], "unmeasured": []}
    step_memory: list[tuple[int, int]] = []
    capacity = None
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = ["measured", "unmeasured"] if round_index % 2 == 0 else ["unmeasured", "measured"]
            for mode in order:
                pack_module._KeptForBackward = measure if mode == "measured" else _Unmeasured
                started = time.perf_counter()
                _, figures, counts = run_packed(configs, args.trials, Path(folder) / f"r{round_index}-{mode}",
                                                with_counts=True)
                makespans[mode].append(time.perf_counter() - started)
                if mode == "measured":
                    step_memory.extend(counts.step_memory)
                    capacity = figures.step_capacity
                print(f"  round {round_index + 1} {mode}: {makespans[mode][-1]:.1f} s", flush=True)
    pack_module._KeptForBackward = measure

    ratios = [a / b for a, b in zip(makespans["measured"], makespans["unmeasured"])]
    print(f"\nmakespan measured   {fmt(makespans['measured'], 1)} s")
    print(f"makespan unmeasured {fmt(makespans['unmeasured'], 1)} s")
    print(f"measured / unmeasured, per round: {fmt(ratios, 3)}")
    print("\nshared training step memory per trial, MiB (median [min, max] over steps):")
    for trials in sorted({trials for trials, _ in step_memory}):
        per_trial = [took / trials / 2**20 for held, took in step_memory if held == trials]
        print(f"  steps of {trials} trial(s): {fmt(per_trial, 1)} over {len(per_trial)} steps")
    largest = max(took / trials for trials, took in step_memory)
    free = psutil.virtual_memory().available
    print(f"free memory {free / 2**30:.1f} GiB fits {int(free * (1 - pack_module.MEMORY_SPARE) // largest)} trials "
          f"per step at the largest share ({largest / 2**20:.1f} MiB); the pack ended at capacity {capacity}")


if __name__ == "__main__":
    main()
