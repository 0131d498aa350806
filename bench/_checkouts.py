"""Two or more checkouts measured side by side: the same measurement in a fresh process per checkout, rounds
alternating their order, and each checkout's spread and ratio to the first (benches with `--checkouts`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from _spread import spread


def measure_alternating(
    script: str, arguments: Sequence[str], checkouts: Sequence[Path], rounds: int, describe: Callable[[dict], str]
) -> dict[Path, list[dict]]:
    """`python script *arguments` once per checkout per round (that checkout's sweeper first on the path), the
    order alternating per round; each run's last line of output is its measurement as JSON, printed as `describe`
    says."""
    results: dict[Path, list[dict]] = {checkout: [] for checkout in checkouts}
    for index in range(rounds):
        for checkout in checkouts if index % 2 == 0 else checkouts[::-1]:
            run = subprocess.run(
                [sys.executable, script, *arguments], capture_output=True, text=True,
                env={**os.environ, "PYTHONPATH": str(checkout.resolve())}, check=True,
            )
            row = json.loads(run.stdout.splitlines()[-1])
            results[checkout].append(row)
            print(f"round {index + 1} {checkout}: {describe(row)}", flush=True)
    return results


def compared(results: dict[Path, list[dict]], keys: Sequence[str], digits: int, same: str) -> list[str]:
    """Per checkout the median [min, max] of each of `keys`, and, past the first checkout, its first key over the
    first checkout's within rounds and whether every round's `digest` equals the first's (`same` names it)."""
    first, *_ = results
    lines = []
    for checkout, rows in results.items():
        line = f"{checkout}: " + ", ".join(f"{key} {spread([row[key] for row in rows], digits)} s" for key in keys)
        if checkout != first:
            ratios = [row[keys[0]] / base[keys[0]] for row, base in zip(rows, results[first])]
            agree = all(row["digest"] == base["digest"] for row, base in zip(rows, results[first]))
            line += f"; {keys[0]} / {first}: {spread(ratios, 3)}; {same}: {agree}"
        lines.append(line)
    return lines
