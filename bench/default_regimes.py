"""Does the embedded default show every regime? `make sweep`'s steps on the default study, in a fresh folder, then
the fit labels, the Pareto front and the seed spread that its analysis reports.

    .venv/bin/python bench/default_regimes.py [--study studies/default.yaml]

Runs `sweeper sweep STUDY`, `sweeper replicate STUDY --top 2 --seeds 2` and `sweeper analyze STUDY --json` in a
temporary working folder (its own runs/default.db), and prints: wall seconds of each step, the count of overfit,
balanced and underfit trials, the Pareto front with its objective values and its width in each objective (in units
of the pooled seed-to-seed SD: a real trade-off moves each objective by more than noise along the front), and the
targets of issue 11 (>= 3 trials of each label, a Pareto front of >= 3 trials) as met or missed.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEPER = str(Path(sys.executable).parent / "sweeper")


def _run(arguments: list[str], work: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([SWEEPER, *arguments], cwd=work, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"sweeper {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="studies/default.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweeper-regimes-") as folder:
        work = Path(folder)
        shutil.copytree(REPO / "studies", work / "studies")
        shutil.copytree(REPO / "configs", work / "configs")
        sweep_s, _ = _run(["sweep", args.study], work)
        replicate_s, _ = _run(["replicate", args.study, "--top", "2", "--seeds", "2"], work)
        analyze_s, out = _run(["analyze", args.study, "--json"], work)
    analysis = json.loads(out)
    labels = collections.Counter(t["fit"]["label"] for t in analysis["trials"] if t.get("fit") and t["fit"]["label"])
    names = [o["name"] for o in analysis["objectives"]]
    print(f"# bench/default_regimes.py: {args.study}; sweep {sweep_s:.0f} s, replicate {replicate_s:.0f} s, "
          f"analyze {analyze_s:.0f} s")
    print(f"fit labels: {labels.get('overfit', 0)} overfit, {labels.get('balanced', 0)} balanced, "
          f"{labels.get('underfit', 0)} underfit")
    front = [t for t in analysis["trials"] if t["number"] in analysis["pareto_numbers"]]
    print(f"Pareto front: {len(front)} trials: " + "; ".join(
        f"#{t['number']} " + ", ".join(f"{n} {t['values'][n]:.4g}" for n in names) for t in front))
    spread = analysis["seed_spread"]["pooled_sd"]
    print("seed-to-seed SD: " + ", ".join(f"{k} {v:.3g}" for k, v in spread.items() if v is not None))
    # a real trade-off: along the front, each objective moves by more than its seed-to-seed noise
    widths = {n: max(t["values"][n] for t in front) - min(t["values"][n] for t in front) for n in names}
    in_sd = {n: widths[n] / spread[n] if spread.get(n) else None for n in names}
    print("Pareto front's width in each objective: " + ", ".join(
        f"{n} {widths[n]:.3g}" + (f" ({in_sd[n]:.1f} seed SD)" if in_sd[n] is not None else "") for n in names))
    for label in ("overfit", "balanced", "underfit"):
        print(f"target >= 3 {label}: {'met' if labels.get(label, 0) >= 3 else 'MISSED'}")
    print(f"target Pareto front >= 3: {'met' if len(front) >= 3 else 'MISSED'}")
    beyond_noise = len(front) >= 2 and all(v is not None and v > 2 for v in in_sd.values())
    print(f"trade-off beyond noise (front wider than 2 seed SD in every objective): "
          f"{'yes' if beyond_noise else 'no'}")


if __name__ == "__main__":
    main()
