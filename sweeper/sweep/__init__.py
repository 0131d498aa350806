"""Sweep: workers that run a study's trials on shared storage, their progress, and the status of a study.

Names are imported on first use (PEP 562): `sweeper status` reads a study through `status_rows` without importing
the training stack (torch, transformers, PEFT, TRL) that the workers need."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ALLOW_FLAG": "_identity",
    "INPUTS_ATTR": "_identity",
    "StudyInputs": "_identity",
    "study_inputs": "_identity",
    "IntermediateEvaluations": "_intermediate",
    "launch_workers": "_launch",
    "visible_gpus": "_launch",
    "worker_environment": "_launch",
    "TrialObjective": "_objective",
    "open_study": "_optuna_study",
    "stored_spec": "_optuna_study",
    "check_study_inputs": "_preflight",
    "open_checked": "_preflight",
    "representative_config": "_preflight",
    "ProgressLine": "_progress",
    "read_progress": "_progress",
    "trials_toward_target": "_progress",
    "StopRequested": "_signals",
    "dump_stack_on_signal": "_signals",
    "exit_code": "_signals",
    "signal_name": "_signals",
    "stop_signals_interrupt": "_signals",
    "watch_launcher": "_signals",
    "status_rows": "_status",
    "HeartbeatSettings": "_worker",
    "run_worker": "_worker",
    "target_reached": "_worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
