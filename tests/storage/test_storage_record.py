"""Trial outcomes as user attributes, read back the way optuna-dashboard reads them."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import optuna

from sweeper.metrics import CurvePoint, TrialResult
from sweeper.storage import config_hash, library_versions, open_storage, record_failure, record_trial_result


def _result() -> TrialResult:
    return TrialResult(
        train_metrics={"train_loss": 0.7, "train_runtime": 12.5, "epoch": 1.0, "total_flos": 1234},
        eval_metrics={"eval_loss": 0.6, "eval_rewards/margins": 0.25, "eval_rewards/accuracies": math.nan},
        curves=[CurvePoint(1, "train", "loss", 0.9)],
        runtime_s=13.0,
        effective_batch_size=8,
        global_steps=40,
        dropped_long_prompts=3,
        micro_batch_size=4,
        gradient_accumulation_steps=2,
    )


def test_recorded_result_reads_back_from_the_study(tmp_path, unique_name):
    storage = open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", heartbeat_interval_s=None)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    trial = study.ask()
    versions = {"trl": "1.16.0", "python": "3.11.9"}
    record_trial_result(trial, _result(), config_hash="0123456789abcdef", library_versions=versions, device_count=2)
    study.tell(trial, 0.6)

    attributes = optuna.load_study(study_name=unique_name, storage=storage).trials[0].user_attrs
    assert attributes["eval_loss"] == 0.6
    assert attributes["eval_rewards/margins"] == 0.25
    assert attributes["eval_rewards/accuracies"] is None  # NaN is not JSON
    assert attributes["train_loss"] == 0.7 and attributes["train_runtime"] == 12.5
    assert attributes["train_epoch"] == 1.0 and attributes["train_total_flos"] == 1234
    assert attributes["effective_batch_size"] == 4 * 2 * 2
    assert attributes["runtime_s"] == 13.0
    assert attributes["dropped_long_prompts"] == 3
    assert attributes["config_hash"] == "0123456789abcdef"
    assert attributes["library_versions"] == versions
    json.dumps(attributes, allow_nan=False)  # what the dashboard needs
    storage.engine.dispose()


def test_failure_reason_is_recorded(tmp_path, unique_name):
    storage = open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", heartbeat_interval_s=None)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    trial = study.ask()
    record_failure(trial, "CUDA out of memory at micro_batch_size=16")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    failed = optuna.load_study(study_name=unique_name, storage=storage).trials[0]
    assert failed.user_attrs["failure_reason"] == "CUDA out of memory at micro_batch_size=16"
    storage.engine.dispose()


def test_config_hash_ignores_key_order_and_sees_values():
    first = config_hash({"orpo": {"beta": 0.1, "learning_rate": 1e-4}, "lora": {"r": 16}})
    reordered = config_hash({"lora": {"r": 16}, "orpo": {"learning_rate": 1e-4, "beta": 0.1}})
    changed = config_hash({"lora": {"r": 8}, "orpo": {"learning_rate": 1e-4, "beta": 0.1}})
    assert first == reordered != changed
    assert len(first) == 16 and int(first, 16) >= 0


def test_library_versions_name_each_library_without_importing_it():
    code = (
        "import sys, json; from sweeper.storage import library_versions; versions = library_versions(); "
        "assert not {'torch', 'trl', 'transformers', 'peft'} & set(sys.modules), sorted(sys.modules); "
        "print(json.dumps(versions))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    versions = json.loads(completed.stdout)
    assert set(versions) == {"torch", "transformers", "trl", "peft", "optuna", "datasets", "sqlalchemy", "python"}
    assert versions["optuna"] == optuna.__version__
    assert library_versions() == versions
