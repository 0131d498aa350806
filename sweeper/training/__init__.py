"""Training: one ORPO + LoRA run through TRL (the only stage that imports TRL and PEFT, in `_orpo.py`)."""

from ._orpo import (
    NonFiniteLossError,
    describe_device,
    is_out_of_memory,
    parse_with_trl_and_peft,
    prepare_pairs,
    release_memory,
    run_orpo,
    trainable_pairs,
)
from ._reuse import ReuseCounts, TrialReuse, weights_fingerprint

__all__ = [
    "NonFiniteLossError",
    "ReuseCounts",
    "TrialReuse",
    "describe_device",
    "is_out_of_memory",
    "parse_with_trl_and_peft",
    "prepare_pairs",
    "release_memory",
    "run_orpo",
    "trainable_pairs",
    "weights_fingerprint",
]
