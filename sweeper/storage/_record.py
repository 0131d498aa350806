"""A trial's outcome as Optuna user attributes, where optuna-dashboard and `load_study` show them."""

from __future__ import annotations

import hashlib
import json
import math
import platform
from importlib import metadata
from typing import Any

from sweeper.metrics import TrialResult

from ._optuna_internals import RETRIED_FROM
from ._trial_record import HasUserAttrs, TrialRecord, store

# Distribution names as pip knows them; read from metadata so that recording never imports torch or TRL.
TRACKED_DISTRIBUTIONS = ("torch", "transformers", "trl", "peft", "optuna", "datasets", "sqlalchemy")
NOT_INSTALLED = "not installed"


WORKER_DIED = "worker died"


def stored_failure_reason(trial: Any, reruns: dict[int, int]) -> str | None:
    """A failed trial's reason as stored, or, for one Optuna failed because its worker stopped beating (a finished
    trial can take no more attributes), `worker died`, with the trial that re-ran it. `reruns`: `rerun_map`."""
    reason = TrialRecord.of(trial).failure_reason
    if reason and trial.number in reruns:  # stopped by SIGTERM and queued again (sweep/_worker.py)
        return f"{reason} (re-run as trial {reruns[trial.number]})"
    if reason or getattr(trial.state, "name", "") != "FAIL":
        return reason
    # every failure sweeper sees is stored with its reason: a FAIL without one was failed by the heartbeat check
    if trial.number in reruns:
        return f"{WORKER_DIED} (re-run as trial {reruns[trial.number]})"
    return WORKER_DIED


def rerun_map(trials: list[Any]) -> dict[int, int]:
    """Failed trial number -> the number of the copy that re-ran its parameters after its worker died."""
    return {t.system_attrs[RETRIED_FROM]: t.number for t in trials if RETRIED_FROM in t.system_attrs}


def record_trial_result(
    trial: HasUserAttrs,
    result: TrialResult,
    *,
    config_hash: str,
    library_versions: dict[str, str],
    device_count: int = 1,
) -> None:
    """Set the final metrics and the facts needed to reproduce the trial as user attributes.

    Eval metrics keep TRL's names (`eval_loss`, `eval_rewards/margins`); train metrics get a `train_` prefix where
    they lack one (`epoch` -> `train_epoch`). NaN and infinite values are stored as None: user attributes are JSON,
    which has no NaN, and optuna-dashboard fails on it.
    """
    metrics: dict[str, Any] = {}
    for name, value in result.train_metrics.items():
        metrics[name if name.startswith("train_") else f"train_{name}"] = _json_number(value)
    for name, value in result.eval_metrics.items():
        metrics[name] = _json_number(value)
    if result.micro_batch_size and result.gradient_accumulation_steps:
        effective_batch_size = result.micro_batch_size * result.gradient_accumulation_steps * device_count
    else:  # a result that does not break the batch down already holds the product
        effective_batch_size = result.effective_batch_size
    store(
        trial,
        metrics=metrics,
        effective_batch_size=effective_batch_size,
        device_count=device_count,
        global_steps=result.global_steps,
        runtime_s=_json_number(result.runtime_s),
        dropped_long_prompts=result.dropped_long_prompts,
        train_rows=result.train_rows,
        eval_rows=result.eval_rows,
        dataset_fingerprint=result.dataset_fingerprint or None,
        bf16=result.bf16,  # what `bf16: auto` became on the trial's device: an export re-runs it the same way
        config_hash=config_hash,
        library_versions=dict(library_versions),
    )


def record_failure(trial: HasUserAttrs, reason: str) -> None:
    """Say why a trial failed, e.g. "CUDA out of memory at micro_batch_size=16", beside its FAIL state."""
    store(trial, failure_reason=reason)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that change results, plus Python's."""
    versions = {}
    for distribution in TRACKED_DISTRIBUTIONS:
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = NOT_INSTALLED
    versions["python"] = platform.python_version()
    return versions


def config_hash(config: dict[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the config as canonical JSON: equal configs, equal hashes."""
    # Sorted keys and fixed separators make the text independent of insertion order; str() covers paths.
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    number = float(value)  # numpy scalars and tensors' .item() results alike
    return number if math.isfinite(number) else None
