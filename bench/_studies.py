"""Helpers shared by bench/pruning.py and bench/samplers.py: short runs of the default study through `sweeper sweep`,
and hypervolume as steps are spent, with Optuna's own hypervolume computation."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml

from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweeper.config import read_yaml_mapping  # noqa: E402
from sweeper.storage import compute_hypervolume  # noqa: E402

REFERENCE_MARGIN = 0.1


def write_default_study(work: Path, name: str, max_steps: int | None, eval_steps: int, **fields: Any) -> Path:
    """studies/default.yaml on configs/tiny.yaml, cut to `max_steps` (None: the config's own schedule), evaluated
    every `eval_steps`, stored in work/bench.db; `fields` replace the study file's (n_trials, sampler, pruner)."""
    study = read_yaml_mapping(REPO / "studies" / "default.yaml")
    fixed = {"orpo.eval_steps": eval_steps, "orpo.logging_steps": eval_steps}
    if max_steps:
        fixed["orpo.max_steps"] = max_steps
    study.update(
        study_name=name,
        base_config=str(REPO / "configs" / "tiny.yaml"),
        fixed=fixed,
        storage=f"sqlite:///{work / 'bench.db'}",
        **fields,
    )
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def run_sweep(study_file: Path) -> tuple[float, optuna.Study]:
    """`sweeper sweep STUDY` in its own process; (wall seconds, the stored study)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "sweeper.cli", "sweep", str(study_file)]
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    spec = read_yaml_mapping(study_file)
    return time.perf_counter() - started, optuna.load_study(study_name=spec["study_name"], storage=spec["storage"])


def finished_trace(study: optuna.Study) -> list[tuple[int, np.ndarray | None, str]]:
    """(optimizer steps the trial spent, its objective vector in minimisation form or None unless COMPLETE, its
    state), in the order trials finished."""
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions])
    finished = [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)]
    finished.sort(key=lambda t: t.datetime_complete)
    return [
        (
            int(t.user_attrs.get("global_steps", 0)),
            np.asarray(t.values) * signs if t.state == TrialState.COMPLETE else None,
            t.state.name,
        )
        for t in finished
    ]


def common_reference(traces: list[list[tuple]]) -> np.ndarray:
    """One reference point for every run compared: the worst value of each objective over all their completed
    trials, pushed out by REFERENCE_MARGIN of its range, so that every trial adds volume."""
    points = np.array([vector for trace in traces for _, vector, _ in trace if vector is not None])
    worst, best = points.max(axis=0), points.min(axis=0)
    span = np.where(worst > best, worst - best, 1.0)
    return worst + REFERENCE_MARGIN * span


def hypervolume_history(trace: list[tuple], reference: np.ndarray) -> list[tuple[int, float]]:
    """(steps spent so far, hypervolume of the completed trials so far) after each finished trial."""
    spent, front, history = 0, [], []
    for steps, vector, _ in trace:
        spent += steps
        if vector is not None and np.all(np.isfinite(vector)) and np.all(vector < reference):
            front.append(vector)
        history.append((spent, float(compute_hypervolume(np.array(front), reference)) if front else 0.0))
    return history


def steps_to(history: list[tuple[int, float]], target: float) -> int | None:
    return next((spent for spent, volume in history if volume >= target), None)
