"""What every trial of a study would meet, checked once before the study exists.

A storage that does not answer, a dataset with a bad row or prompts that leave nothing to train on would otherwise
fail every trial in turn and leave a study full of FAIL trials behind; here they fail once, with the fix named.
"""

from __future__ import annotations

import logging

from ..config import ConfigError, TrainingConfig, build_training_config
from ..storage import Storage
from ..study import StudySpec
from ..training import PreparedPairs, TrialReuse, pairs_key, prepare_pairs
from ._identity import StudyInputs, study_inputs
from ._worker import HeartbeatSettings

MAX_LENGTH = "orpo.max_length"
log = logging.getLogger(__name__)


def representative_config(spec: StudySpec) -> TrainingConfig:
    """The base config with the study's fixed values; where the space searches max_length, its largest value, so
    that prompts are refused only when no trial could fit them."""
    overrides = spec.training_overrides({})
    if MAX_LENGTH in spec.space.searched_paths:
        overrides[MAX_LENGTH] = max(spec.space.parameters[MAX_LENGTH].candidate_values())
    return build_training_config(spec.base_mapping, overrides, source=f"{spec.base_config}")


def open_checked(
    spec: StudySpec, heartbeat: HeartbeatSettings, reuse: TrialReuse | None = None
) -> tuple[Storage, StudyInputs]:
    """The study's data checked, then the command's storage opened (a storage that does not answer fails there, with
    the fix named), then the data line shown. In that order a refused sweep leaves nothing behind (no empty
    database, no table added to an existing one) and says one thing: its error. The pairs checked go into `reuse`
    (the worker's of this process), so that its first trial of the same data does not prepare them again."""
    representative, pairs = _checked_data(spec, reuse)
    storage = Storage.open(spec.storage, heartbeat.interval_s, heartbeat.grace_s)
    _show_data(representative, pairs)
    return storage, study_inputs(spec, pairs.data_fingerprint)


def check_study_inputs(spec: StudySpec) -> StudyInputs:
    """Raise ConfigError when the data leaves no trial anything to train on; show the data line and its warnings;
    return what the study is built on, for `open_study` to remember or compare."""
    representative, pairs = _checked_data(spec)
    _show_data(representative, pairs)
    return study_inputs(spec, pairs.data_fingerprint)


def _checked_data(spec: StudySpec, reuse: TrialReuse | None = None) -> tuple[TrainingConfig, PreparedPairs]:
    try:
        representative = representative_config(spec)
        if reuse is None:
            return representative, prepare_pairs(representative)
        # under the key a trial looks them up by: reused only by trials whose data, model and max_length match
        return representative, reuse.pairs(pairs_key(representative), lambda: prepare_pairs(representative))
    except ConfigError as error:
        raise ConfigError(f"base_config {spec.base_config}: {error}") from None


def _show_data(representative: TrainingConfig, pairs: PreparedPairs) -> None:
    train, validation = pairs.checks
    log.info(
        "data %s: %d training and %d validation pairs (%d and %d dropped for prompts filling orpo.max_length), "
        "fingerprint %s", representative.data.source, train.rows, validation.rows, train.dropped,
        validation.dropped, pairs.data_fingerprint,
    )
    for warning in pairs.warnings:
        log.warning(warning)
