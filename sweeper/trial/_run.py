"""One trial: a validated training config in, a TrialResult or a TrialFailure with its reason out."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ConfigError, TrainingConfig
from ..faults import raise_if_requested
from ..metrics import NON_FINITE_LOSS, OUT_OF_MEMORY, TrialResult
from ..training import (
    NonFiniteLossError,
    PackOutOfMemory,
    TrainingPack,
    TrialReuse,
    is_out_of_memory,
    release_memory,
    run_orpo,
)

log = logging.getLogger(__name__)
# a pack halves its step on each out-of-memory backward, so a trial is sent back at most log2(pack size) times
MAX_PACK_RETRIES = 8

# the stored failure reasons live in metrics.py (light: status and the progress line read them)


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


def with_gradient_checkpointing(config: TrainingConfig) -> TrainingConfig | None:
    """Same run, recomputing activations on backward instead of storing them; None when it is already on."""
    if config.orpo.gradient_checkpointing:
        return None
    updated = config.model_copy(deep=True)
    updated.orpo.gradient_checkpointing = True
    return updated


def memory_fallbacks(config: TrainingConfig, packed: bool = False) -> list[tuple[TrainingConfig, str]]:
    """What to try, in order, after running out of memory, each with what it changes: half the micro-batch (same
    effective batch, only slower), then gradient checkpointing as well (one more forward pass per step; not for a
    packed trial, which trains without it)."""
    fallbacks = []
    smaller = halved_micro_batch(config)
    if smaller is not None:
        orpo = smaller.orpo
        fallbacks.append((smaller, f"at {orpo.per_device_train_batch_size} x {orpo.gradient_accumulation_steps}"))
    checkpointed = None if packed else with_gradient_checkpointing(smaller or config)
    if checkpointed is not None:
        fallbacks.append((checkpointed, "with gradient checkpointing"))
    return fallbacks


def run_trial(
    config: TrainingConfig,
    output_dir: str | Path,
    reuse: TrialReuse | None = None,
    callbacks: list | None = None,
    pack: TrainingPack | None = None,
) -> TrialResult:
    """Train once; on out-of-memory retry at half the micro-batch and twice the accumulation, then, still out of
    memory (or with a micro-batch of 1), once more with gradient checkpointing. Each retry leaves a note. A packed
    trial sent back by its pack (`PackOutOfMemory`: the pack now steps fewer trials at once) trains again unchanged.

    `reuse` (one per worker) shares the base model and tokenized data between trials; `callbacks` are transformers
    TrainerCallbacks handed to every attempt; `pack` trains it together with the pack's other trials."""
    try:
        raise_if_requested(config.model_dump(mode="json"))
        attempts = [(config, ""), *memory_fallbacks(config, packed=pack is not None)]
        notes = []
        number, pack_retries = 0, 0
        while True:
            attempt = attempts[number][0]
            try:
                result = run_orpo(attempt, output_dir, callbacks=callbacks, reuse=reuse, pack=pack)
            except PackOutOfMemory as error:
                pack_retries += 1
                if pack_retries > MAX_PACK_RETRIES:
                    raise
                log.warning("%s; training the trial again", error)
                notes.append(f"{str(error).split(':')[0]}; trained again")
                release_memory()
                continue
            except Exception as error:
                if is_out_of_memory(error) and number + 1 < len(attempts):
                    number += 1
                    failed_at = attempt.orpo.per_device_train_batch_size
                    change = attempts[number][1]
                    log.warning("out of memory at micro-batch %d; retrying %s", failed_at, change)
                    notes.append(f"out of memory at micro-batch {failed_at}; ran {change}")
                    release_memory()
                    continue
                raise
            result.notes.extend(notes)
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
