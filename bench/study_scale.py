"""Commands on studies of N trials: CPU seconds and peak memory of `status`, `analyze --json` and `report`, with
the growth exponent between sizes (issue 17's measurement, first part: SQLite, the read-only commands).

    .venv/bin/python bench/study_scale.py [--sizes 100 1000] [--commands status "analyze --json" report]

Each study is the analysis tests' known-structure study (tests/_known_study.py: real Optuna trials with the user
attributes and curves a sweep stores, ~50 curve points each) grown to N trials in a fresh SQLite file. Each command
runs in its own process; CPU seconds are user + system of that process, memory its peak resident set.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
SWEEPER = str(Path(sys.executable).parent / "sweeper")

from _known_study import build_known_study, write_study_file  # noqa: E402

COMMANDS = {
    "status": ["status"],
    "analyze --json": ["analyze", "--json"],
    "report": ["report", "-o", "report.html"],
}


def _run(arguments: list[str], study_file: Path, folder: Path) -> tuple[float, float, float]:
    """(CPU s, wall s, peak MB) of one command in its own process."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: replace it with the command, output to a file
        with open(folder / "out.txt", "w") as out:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            os.chdir(folder)
            os.execv(SWEEPER, [SWEEPER, arguments[0], str(study_file), *arguments[1:]])
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"sweeper {' '.join(arguments)} failed:\n{(folder / 'out.txt').read_text()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--commands", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    args = parser.parse_args()
    results: dict[str, dict[int, tuple[float, float, float]]] = {name: {} for name in args.commands}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="sweeper-scale-") as name:
            folder = Path(name)
            url = f"sqlite:///{folder / 'study.db'}"
            build_known_study(url, "scale", n_random=size - 4)  # + 2 hand-made, 1 failed, 1 pruned
            study_file = write_study_file(folder / "study.yaml", "scale", url)
            for command in args.commands:
                results[command][size] = _run(COMMANDS[command], study_file, folder)
    print("# bench/study_scale.py: SQLite; CPU s (wall s), peak MB; growth = log(CPU ratio) / log(size ratio)")
    print("| command | " + " | ".join(f"{size} trials" for size in args.sizes) + " | growth |")
    print("|---|" + "---|" * len(args.sizes) + "---|")
    small, large = args.sizes[0], args.sizes[-1]
    for command, by_size in results.items():
        cells = [f"{cpu:.1f} s ({wall:.1f} s), {mb:.0f} MB" for cpu, wall, mb in (by_size[s] for s in args.sizes)]
        growth = math.log(by_size[large][0] / by_size[small][0]) / math.log(large / small)
        print(f"| {command} | " + " | ".join(cells) + f" | {growth:.2f} |")


if __name__ == "__main__":
    main()
