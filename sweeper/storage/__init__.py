"""Storage: Optuna's tables and the curves table in one SQLite file or PostgreSQL database.

`open_storage` gives the `RDBStorage` a study runs on (heartbeats on, dead workers' trials re-queued);
`CurveStore` holds every logged curve point; `record_trial_result` puts a trial's outcome into user attributes.
"""

from ._curves import CURVES_TABLE, CurvePointRow, CurveStore, create_curves_table
from ._rdb import open_storage
from ._record import config_hash, library_versions, record_failure, record_trial_result
from ._url import check_storage_reachable, redact_url, resolve_storage_url

__all__ = [
    "CURVES_TABLE",
    "CurvePointRow",
    "CurveStore",
    "check_storage_reachable",
    "config_hash",
    "create_curves_table",
    "library_versions",
    "open_storage",
    "record_failure",
    "record_trial_result",
    "redact_url",
    "resolve_storage_url",
]
