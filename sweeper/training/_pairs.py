"""The preference pairs a trial trains and validates on: loaded, checked, chat-templated, long prompts dropped; and
the keys under which a worker reuses them and their tokenized form between trials."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..config import ConfigError, TrainingConfig
from ..data import SplitCheck, check_split, check_split_sizes, data_warnings, drop_long_prompts, load_preference_data
from ._models import check_max_length_fits, load_tokenizer, model_location
from ._reuse import content_key, local_file_stamp, tokenizer_fingerprint
from ._trl import TRL_VERSION, to_text_pairs


class PreparedPairs(NamedTuple):
    tokenizer: Any
    train: Any
    validation: Any
    dropped_train: int
    dropped_eval: int
    data_fingerprint: str  # of the rows as loaded, before templating
    tokenizer_fingerprint: str
    checks: tuple[SplitCheck, SplitCheck]  # train, validation: rows, drops, unknown tokens, indistinct pairs
    warnings: tuple[str, ...]  # what `data_warnings` found: printed by `sweeper sweep` and `sweeper trial`


def trainable_pairs(config: TrainingConfig):
    """The tokenizer and the train/validation pairs as the trainer sees them: rows validated, chat-templated, rows
    whose prompt fills `orpo.max_length` dropped. Returns (tokenizer, train, validation, dropped_train,
    dropped_eval); raises ConfigError when no pair is left. A sweep calls it once before its study exists."""
    return prepare_pairs(config)[:5]


def prepare_pairs(config: TrainingConfig) -> PreparedPairs:
    """`trainable_pairs`, with the fingerprints that key the tokenized-data cache and the whole-data checks."""
    data = load_preference_data(config.data)
    tokenizer = load_tokenizer(config, data)
    check_max_length_fits(config)
    max_length = config.orpo.max_length
    train, dropped_train = drop_long_prompts(
        to_text_pairs(data.train, tokenizer), tokenizer, max_length, keep_at_most=config.data.max_train_rows
    )
    validation, dropped_eval = drop_long_prompts(
        to_text_pairs(data.validation, tokenizer), tokenizer, max_length, keep_at_most=config.data.max_eval_rows
    )
    if len(train) == 0 or len(validation) == 0:
        split, dropped = ("training", dropped_train) if len(train) == 0 else ("validation", dropped_eval)
        raise ConfigError(
            f"orpo.max_length: {config.orpo.max_length}: the prompt of every {split} row ({dropped} of "
            f"{data.source}) fills it, so no completion token is left and nothing is left to train on. "
            "Fix: raise orpo.max_length or shorten the prompts"
        )
    checks = (
        check_split("training", train, dropped_train, tokenizer),
        check_split("validation", validation, dropped_eval, tokenizer),
    )
    check_split_sizes(list(checks), data.source, max_length)
    return PreparedPairs(
        tokenizer, train, validation, dropped_train, dropped_eval, data.fingerprint, tokenizer_fingerprint(tokenizer),
        checks, tuple(data_warnings(list(checks), data.source, config.model.name)),
    )


def pairs_key(config: TrainingConfig) -> tuple:
    model = config.model
    return (config.data.model_dump_json(), local_file_stamp(config.data.source), model_location(config),
            model.revision, model.trust_remote_code, config.orpo.max_length)


def tokenized_key(pairs: PreparedPairs, config: TrainingConfig, model) -> str:
    """Everything TRL's `tokenize_row` output depends on; its code is pinned by TRL's version."""
    return content_key(
        data=pairs.data_fingerprint,
        tokenizer=pairs.tokenizer_fingerprint,
        max_length=config.orpo.max_length,
        encoder_decoder=bool(model.config.is_encoder_decoder),
        trl=TRL_VERSION,
        rows=(len(pairs.train), len(pairs.validation)),
    )


