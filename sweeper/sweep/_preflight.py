"""What every trial of a study would meet, checked once before the study exists.

A storage that does not answer, a dataset with a bad row or prompts that leave nothing to train on would otherwise
fail every trial in turn and leave a study full of FAIL trials behind; here they fail once, with the fix named.
"""

from __future__ import annotations

from ..config import ConfigError, TrainingConfig, build_training_config, read_yaml_mapping
from ..storage import check_storage_reachable
from ..study import StudySpec
from ..training import trainable_pairs

MAX_LENGTH = "orpo.max_length"


def representative_config(spec: StudySpec) -> TrainingConfig:
    """The base config with the study's fixed values; where the space searches max_length, its largest value, so
    that prompts are refused only when no trial could fit them."""
    overrides = spec.training_overrides({})
    if MAX_LENGTH in spec.space.searched_paths:
        overrides[MAX_LENGTH] = max(spec.space.parameters[MAX_LENGTH].candidate_values())
    return build_training_config(read_yaml_mapping(spec.base_config), overrides, source=f"{spec.base_config}")


def check_study_inputs(spec: StudySpec) -> None:
    """Raise ConfigError when the storage does not answer or the data leaves no trial anything to train on."""
    check_storage_reachable(spec.storage)
    try:
        trainable_pairs(representative_config(spec))
    except ConfigError as error:
        raise ConfigError(f"base_config {spec.base_config}: {error}") from None
