"""Storage: Optuna's tables and the curves table in one SQLite file or PostgreSQL database.

`Storage` is what a command opens once and passes down (see `_handle.py`): Optuna's storage, the curves table and
the trial slot lock on one engine. `open_storage` gives the `RDBStorage` a study runs on (heartbeats on, dead workers' trials re-queued), and
`reading_storage` one for reading a stored study;
`CurveStore` holds every logged curve point; `TrialRecord` is what a trial stores as user attributes, `store` sets
its fields and `record_trial_result` puts a trial's outcome into it.
"""

from ._curves import CURVES_TABLE, CurvePointRow, CurveStore, StoredPoint, create_curves_table
from ._rdb import beating_trials, open_storage, reading_storage, time_silent_trials
from ._slot_lock import TrialSlotLock
from ._handle import Storage
from ._optuna_internals import (
    RETRIED_FROM, RETRY_HISTORY, compute_hypervolume, full_trial, pareto_front, read_trials, storage_url,
)
from ._record import (
    WORKER_DIED,
    config_hash,
    library_versions,
    record_failure,
    record_trial_result,
    rerun_map,
    stored_failure_reason,
)
from ._replicates import REPLICATES_SUFFIX, replicates_study_name
from ._trial_record import TrialRecord, store, stored_fields
from ._retry import STORAGE_RETRY_S, StorageFailure, call_with_retries, storage_failures_explained
from ._reachable import check_storage_reachable
from ._stop_points import defer_stop
from ._url import read_storage_file, redact_url, resolve_storage_url

__all__ = [
    "RETRIED_FROM",
    "RETRY_HISTORY",
    "compute_hypervolume",
    "full_trial",
    "pareto_front",
    "read_trials",
    "storage_url",
    "WORKER_DIED",
    "rerun_map",
    "stored_failure_reason",
    "Storage",
    "TrialRecord",
    "store",
    "stored_fields",
    "time_silent_trials",
    "TrialSlotLock",
    "CURVES_TABLE",
    "CurvePointRow",
    "CurveStore",
    "StoredPoint",
    "STORAGE_RETRY_S",
    "StorageFailure",
    "REPLICATES_SUFFIX",
    "beating_trials",
    "call_with_retries",
    "check_storage_reachable",
    "config_hash",
    "create_curves_table",
    "defer_stop",
    "library_versions",
    "open_storage",
    "read_storage_file",
    "reading_storage",
    "record_failure",
    "record_trial_result",
    "redact_url",
    "replicates_study_name",
    "resolve_storage_url",
    "storage_failures_explained",
]
