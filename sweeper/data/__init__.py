"""Preference data: the built-in task, local files and hub datasets, validated row by row."""

from ._loading import (
    DataError,
    PreferenceData,
    SplitCheck,
    check_split,
    check_split_sizes,
    data_warnings,
    drop_long_prompts,
    load_preference_data,
    prompt_token_count,
    row_problem,
)
from ._synthetic import synthetic_rows, synthetic_task_files

__all__ = [
    "DataError",
    "PreferenceData",
    "SplitCheck",
    "check_split",
    "check_split_sizes",
    "data_warnings",
    "drop_long_prompts",
    "load_preference_data",
    "prompt_token_count",
    "row_problem",
    "synthetic_rows",
    "synthetic_task_files",
]
