"""The embedded default trial: its time on this machine, and eval accuracy for good and bad learning rates.

    .venv/bin/python bench/default_trial.py [--learning-rates 3e-3 1e-5 3e-2] [--repeats 1]

Each trial runs through `sweeper trial configs/tiny.yaml --json` in its own process, as a user would run it, and
prints: learning rate, wall time of the whole command, the trainer's own train runtime, and final eval
rewards/accuracies and nll_loss. Measure on a quiet machine: other work on the 2 cores stretches every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_trial(learning_rate: float) -> dict:
    command = [
        sys.executable, "-m", "sweeper.cli", "trial", str(REPO / "configs" / "tiny.yaml"),
        "--set", f"orpo.learning_rate={learning_rate}", "--json",
    ]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if finished.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr[-2000:]}")
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if result["state"] != "COMPLETE":
        return {"learning_rate": learning_rate, "wall_s": wall_s, "state": result["failure_reason"]}
    return {
        "learning_rate": learning_rate,
        "wall_s": wall_s,
        "train_runtime_s": result["train_metrics"]["train_runtime"],
        "eval_accuracy": result["eval_metrics"]["eval_rewards/accuracies"],
        "eval_nll_loss": result["eval_metrics"]["eval_nll_loss"],
        "state": "COMPLETE",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-3, 1e-5, 3e-2])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"# bench/default_trial.py on {platform.node()}: {os.cpu_count()} cores, python {platform.python_version()}")
    print("# command: .venv/bin/python bench/default_trial.py " + " ".join(sys.argv[1:]))
    print(f"{'learning_rate':>13} {'wall_s':>7} {'train_s':>7} {'eval_acc':>8} {'eval_nll':>8}  state")
    for _ in range(args.repeats):
        for learning_rate in args.learning_rates:
            row = run_trial(learning_rate)
            print(
                f"{row['learning_rate']:>13.0e} {row['wall_s']:>7.1f} {row.get('train_runtime_s', float('nan')):>7.1f} "
                f"{row.get('eval_accuracy', float('nan')):>8.3f} {row.get('eval_nll_loss', float('nan')):>8.3f}  {row['state']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
