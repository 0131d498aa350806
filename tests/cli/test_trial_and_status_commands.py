"""The commands as a user types them: `sweeper trial --json` and `sweeper status --json`, in real processes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sweeper.metrics import ORPO_METRICS

pytestmark = pytest.mark.integration  # each test trains in a `sweeper` process

REPO_ROOT = Path(__file__).resolve().parents[2]

FAST = ["orpo.max_steps=8", "orpo.logging_steps=2", "orpo.eval_steps=4", "data.builtin.n_train=64", "data.builtin.n_eval=32"]


def _sweeper(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeper.cli", *args], capture_output=True, text=True, timeout=600)


def test_trial_json_prints_one_object_with_final_metrics_and_curves():
    sets = [part for value in FAST for part in ("--set", value)]
    finished = _sweeper("trial", str(REPO_ROOT / "configs" / "tiny.yaml"), *sets, "--json")
    assert finished.returncode == 0, finished.stderr
    (line,) = finished.stdout.strip().splitlines()  # nothing else on stdout: safe to pipe into jq
    result = json.loads(line)
    assert result["state"] == "COMPLETE"
    for metric in ORPO_METRICS:
        assert math.isfinite(result["eval_metrics"][f"eval_{metric}"])
        assert math.isfinite(result["train_metrics"][metric])
    for name in ("train_runtime", "train_samples_per_second", "train_steps_per_second"):
        assert result["train_metrics"][name] > 0
    splits = {(point["split"], point["metric"]) for point in result["curves"]}
    assert {("train", "loss"), ("eval", "rewards/accuracies")} <= splits


def test_trial_with_a_misspelt_field_exits_2_naming_it():
    finished = _sweeper("trial", str(REPO_ROOT / "configs" / "tiny.yaml"), "--set", "orpo.learning_rat=1e-4")
    assert finished.returncode == 2
    assert "orpo.learning_rat" in finished.stderr and "Traceback" not in finished.stderr


def test_status_json_lists_the_trials_of_a_study(write_fast_study):
    study_file = write_fast_study(n_trials=1)
    assert _sweeper("sweep", str(study_file)).returncode == 0
    finished = _sweeper("status", str(study_file), "--json")
    assert finished.returncode == 0, finished.stderr
    (row,) = json.loads(finished.stdout)
    assert row["state"] == "COMPLETE" and row["pareto"] and len(row["values"]) == 2
