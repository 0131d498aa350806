"""Sweep: workers that run a study's trials on shared storage, their progress, and the status of a study."""

from ._identity import ALLOW_FLAG, INPUTS_ATTR, TRIAL_INPUTS_ATTR, StudyInputs, study_inputs
from ._intermediate import PLANNED_STEPS, PRUNED_AT_STEP, PRUNED_REASON, IntermediateEvaluations
from ._launch import launch_workers, visible_gpus, worker_environment
from ._objective import TrialObjective
from ._optuna_study import open_study, stored_spec
from ._preflight import check_study_inputs, representative_config
from ._progress import ProgressLine, read_progress, trials_toward_target
from ._signals import StopRequested, exit_code, signal_name, stop_signals_interrupt, watch_launcher
from ._status import status_rows
from ._worker import HeartbeatSettings, run_worker, target_reached

__all__ = [
    "ALLOW_FLAG",
    "INPUTS_ATTR",
    "StudyInputs",
    "TRIAL_INPUTS_ATTR",
    "study_inputs",
    "HeartbeatSettings",
    "IntermediateEvaluations",
    "PLANNED_STEPS",
    "PRUNED_AT_STEP",
    "PRUNED_REASON",
    "ProgressLine",
    "TrialObjective",
    "check_study_inputs",
    "launch_workers",
    "open_study",
    "read_progress",
    "representative_config",
    "run_worker",
    "StopRequested",
    "exit_code",
    "signal_name",
    "status_rows",
    "stop_signals_interrupt",
    "watch_launcher",
    "stored_spec",
    "target_reached",
    "trials_toward_target",
    "visible_gpus",
    "worker_environment",
]
