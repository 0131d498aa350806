"""Every use of Optuna's internals, in one place. Optuna is pinned to the minor version these were read from
(pyproject.toml), and tests/storage/test_optuna_contract.py fails, naming the internal, when one of them changes.

Why each is needed: Optuna has no public way to get a study's storage URL or the RDBStorage under its cache, to
know which RUNNING trials have sent a heartbeat, or to compute a hypervolume; and the cache in front of every
study's storage calls RDBStorage's private methods, which a storage that retries must therefore also wrap.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna._hypervolume import compute_hypervolume  # no public equivalent (Optuna 5.1)

# The minor version these internals were read from; the contract test checks the installed one against it.
OPTUNA_TESTED_MINOR = "5.1"

HEARTBEAT_TABLE = "trial_heartbeats"  # Optuna's RDB table: one row per trial that has beaten, column trial_id
# System attributes Optuna's RetryHeartbeatStaleTrialCallback puts on a re-queued copy (public names since 2.8)
RETRIED_FROM = "failed_trial"
RETRY_HISTORY = "retry_history"

# RDBStorage's private methods that Optuna's cache (`_CachedStorage`, in front of every study's RDBStorage) calls
# instead of the public ones, and the one the heartbeat check uses.
PRIVATE_STORAGE_METHODS = ("_get_trials", "_set_trial_param", "_get_best_trial_id", "_get_stale_trial_ids")
PRIVATE_CREATE_METHOD = "_create_new_trial"

__all__ = [
    "HEARTBEAT_TABLE",
    "OPTUNA_TESTED_MINOR",
    "PRIVATE_CREATE_METHOD",
    "PRIVATE_STORAGE_METHODS",
    "RETRIED_FROM",
    "RETRY_HISTORY",
    "compute_hypervolume",
    "rdb_storage",
    "storage_url",
    "trial_id",
]


def rdb_storage(study: optuna.Study) -> Any:
    """The storage under the study's cache (an RDBStorage for every storage sweeper opens)."""
    storage = study._storage
    return getattr(storage, "_backend", storage)


def storage_url(study: optuna.Study) -> str:
    """The URL of the study's RDB storage (with its password: redact before showing), or "" for another storage."""
    return getattr(rdb_storage(study), "url", "")


def trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (heartbeats are keyed by it, not by the trial number)."""
    return trial._trial_id
