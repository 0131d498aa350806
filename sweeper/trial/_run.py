"""One trial: a validated training config in, a TrialResult or a TrialFailure with its reason out."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError, TrainingConfig
from ..faults import raise_if_requested
from ..metrics import TrialResult
from ..training import NonFiniteLossError, is_out_of_memory, release_memory, run_orpo

log = logging.getLogger(__name__)

OUT_OF_MEMORY = "out of memory"
NON_FINITE_LOSS = "non-finite loss"
INTERRUPTED = "interrupted"


class TrialFailure(Exception):
    """A trial that cannot produce objectives. `reason` is short and stable (stored, grouped by analysis)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def halved_micro_batch(config: TrainingConfig) -> TrainingConfig | None:
    """Same effective batch with half the memory per step, or None when the micro-batch is already 1."""
    micro = config.orpo.per_device_train_batch_size
    if micro <= 1 or micro % 2:
        return None  # an odd micro-batch cannot be halved without changing the effective batch
    updated = config.model_copy(deep=True)
    updated.orpo.per_device_train_batch_size = micro // 2
    updated.orpo.gradient_accumulation_steps = config.orpo.gradient_accumulation_steps * 2
    return updated


def run_trial(config: TrainingConfig, output_dir: str | Path) -> TrialResult:
    """Train once; on out-of-memory retry once at half the micro-batch and twice the accumulation."""
    try:
        raise_if_requested(config.model_dump(mode="json"))
        try:
            return run_orpo(config, output_dir)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            smaller = halved_micro_batch(config)
            if smaller is None:
                raise
            log.warning(
                "out of memory at micro-batch %d; retrying at %d x %d accumulation",
                config.orpo.per_device_train_batch_size,
                smaller.orpo.per_device_train_batch_size,
                smaller.orpo.gradient_accumulation_steps,
            )
            release_memory()
            result = run_orpo(smaller, output_dir)
            result.notes.append(
                f"out of memory at micro-batch {config.orpo.per_device_train_batch_size}; "
                f"ran at {smaller.orpo.per_device_train_batch_size} x {smaller.orpo.gradient_accumulation_steps}"
            )
            return result
    except NonFiniteLossError as error:
        raise TrialFailure(NON_FINITE_LOSS, f"at {error.where}") from error
    except ConfigError as error:
        raise TrialFailure("invalid config", str(error)) from error
    except Exception as error:
        if is_out_of_memory(error):
            raise TrialFailure(OUT_OF_MEMORY, str(error).splitlines()[0] if str(error) else "") from error
        raise TrialFailure(f"{type(error).__name__}", str(error).splitlines()[0] if str(error) else "") from error
    finally:
        release_memory()
