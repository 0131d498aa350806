"""Resuming a finished study: `sweeper sweep STUDY` when the study already holds its target, with the report and
export written again (what every resume did before) against skipped because nothing they show changed.

    .venv/bin/python bench/resume_finished.py [--rounds 5]

The study is tests/_known_study.py's (42 stored trials with curves, no training); its study file's target is below
what it holds, so each command checks its inputs, finds the target reached and goes to the hand-off. The two cases
alternate, round by round: "rewrite" removes the hand-off's state file first, "unchanged" leaves it. Prints each
round's wall seconds, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from _known_study import build_known_study  # noqa: E402

from sweeper.hand_off import HAND_OFF_STATE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweeper-resume-") as work:
        work = Path(work)
        url = f"sqlite:///{work / 'runs' / 'known.db'}"
        (work / "runs").mkdir()
        build_known_study(url, "resume")
        study_file = work / "study.yaml"
        study_file.write_text(
            f"study_name: resume\nbase_config: {REPO / 'configs' / 'tiny.yaml'}\nstorage: {url}\nn_trials: 10\n"
            "space:\n  orpo.learning_rate: {log_uniform: [1.0e-5, 1.0e-3]}\n"
            "objectives: [{name: eval_nll_loss, direction: minimize}, {name: eval_logp_margin, direction: maximize}]\n"
        )
        command = [str(Path(sys.executable).parent / "sweeper"), "sweep", str(study_file)]
        subprocess.run(command, cwd=work, capture_output=True, check=True)  # the first hand-off
        times: dict[str, list[float]] = {"rewrite": [], "unchanged": []}
        print(f"# {' '.join(command[1:])}: a finished study of 42 trials, {args.rounds} rounds")
        for round_index in range(args.rounds):
            for case in ("rewrite", "unchanged"):
                if case == "rewrite":
                    (work / "runs" / "resume" / HAND_OFF_STATE).unlink()
                started = time.perf_counter()
                done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=True)
                times[case].append(time.perf_counter() - started)
                assert ("unchanged" in done.stdout) == (case == "unchanged"), done.stdout
            print(f"round {round_index + 1}: rewrite {times['rewrite'][-1]:.2f} s, "
                  f"unchanged {times['unchanged'][-1]:.2f} s")
        rewrite, unchanged = statistics.median(times["rewrite"]), statistics.median(times["unchanged"])
        ratios = sorted(u / r for u, r in zip(times["unchanged"], times["rewrite"]))
        print(f"median: rewrite {rewrite:.2f} s, unchanged {unchanged:.2f} s; unchanged / rewrite per round "
              f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}, {ratios[-1]:.2f}]")


if __name__ == "__main__":
    main()
