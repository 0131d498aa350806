"""What every trial of a study would meet, checked once before the study exists.

A storage that does not answer, a dataset with a bad row or prompts that leave nothing to train on would otherwise
fail every trial in turn and leave a study full of FAIL trials behind; here they fail once, with the fix named.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url

from ..config import ConfigError, TrainingConfig, build_training_config
from ..storage import check_storage_reachable
from ..study import StudySpec
from ..training import prepare_pairs
from ._identity import StudyInputs, study_inputs

MAX_LENGTH = "orpo.max_length"
log = logging.getLogger(__name__)


def representative_config(spec: StudySpec) -> TrainingConfig:
    """The base config with the study's fixed values; where the space searches max_length, its largest value, so
    that prompts are refused only when no trial could fit them."""
    overrides = spec.training_overrides({})
    if MAX_LENGTH in spec.space.searched_paths:
        overrides[MAX_LENGTH] = max(spec.space.parameters[MAX_LENGTH].candidate_values())
    return build_training_config(spec.base_mapping, overrides, source=f"{spec.base_config}")


def _sqlite_file_to_be_created(url: str) -> Path | None:
    """The SQLite file that checking the storage will create, or None (it exists, or the storage is a server)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def _remove_created(path: Path | None) -> None:
    if path is None:
        return
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)


def check_study_inputs(spec: StudySpec) -> StudyInputs:
    """Raise ConfigError when the storage does not answer or the data leaves no trial anything to train on; return
    what the study is built on, for `open_study` to remember or compare."""
    created = _sqlite_file_to_be_created(spec.storage)
    check_storage_reachable(spec.storage)
    try:
        representative = representative_config(spec)
        pairs = prepare_pairs(representative)
    except ConfigError as error:
        _remove_created(created)  # a refused sweep leaves nothing behind, not an empty database
        raise ConfigError(f"base_config {spec.base_config}: {error}") from None
    train, validation = pairs.checks
    log.info(
        "data %s: %d training and %d validation pairs (%d and %d dropped for prompts filling orpo.max_length), "
        "fingerprint %s", representative.data.source, train.rows, validation.rows, train.dropped,
        validation.dropped, pairs.data_fingerprint,
    )
    for warning in pairs.warnings:
        log.warning(warning)
    return study_inputs(spec, pairs.data_fingerprint)
