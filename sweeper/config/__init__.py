"""Validation at the edge: study files and training configs are checked once, when read."""

from ._errors import ConfigError
from ._training import (
    BUILTIN_BYTES_MODEL,
    BUILTIN_MODEL,
    BUILTIN_TASK,
    TrainingConfig,
    build_training_config,
    config_to_yaml,
    load_training_config,
    parse_override,
    read_training_mapping,
    resolve_data_source,
    set_dotted,
)
from ._yaml import load_yaml_text, read_yaml_mapping, redact_secrets, shown_value

__all__ = [
    "BUILTIN_BYTES_MODEL",
    "BUILTIN_MODEL",
    "BUILTIN_TASK",
    "ConfigError",
    "TrainingConfig",
    "build_training_config",
    "config_to_yaml",
    "load_training_config",
    "parse_override",
    "load_yaml_text",
    "read_training_mapping",
    "read_yaml_mapping",
    "resolve_data_source",
    "redact_secrets",
    "shown_value",
    "set_dotted",
]
