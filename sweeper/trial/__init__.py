"""Trial: runs one training config with out-of-memory retry and turns every failure into a stored reason."""

from ..metrics import INTERRUPTED  # re-exported: a trial's failure reasons, in one import
from ._run import (
    NON_FINITE_LOSS,
    OUT_OF_MEMORY,
    TrialFailure,
    halved_micro_batch,
    memory_fallbacks,
    run_trial,
    with_gradient_checkpointing,
)

__all__ = [
    "INTERRUPTED",
    "NON_FINITE_LOSS",
    "OUT_OF_MEMORY",
    "TrialFailure",
    "halved_micro_batch",
    "memory_fallbacks",
    "run_trial",
    "with_gradient_checkpointing",
]
