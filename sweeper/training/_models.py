"""Loading the base model and its tokenizer (transformers only), and what a trial's device can do."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ..config import BUILTIN_BYTES_MODEL, BUILTIN_MODEL, ConfigError, TrainingConfig
from ..data import PreferenceData
from ..model import BYTES_SHAPE, tiny_model_path


def model_location(config: TrainingConfig) -> str:
    if config.model.name == BUILTIN_MODEL:
        return str(tiny_model_path())
    if config.model.name == BUILTIN_BYTES_MODEL:
        return str(tiny_model_path(BYTES_SHAPE))
    return config.model.name


def use_bf16(config: TrainingConfig) -> bool:
    wanted = config.orpo.bf16
    supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if wanted is True and not supported:
        raise ConfigError("orpo.bf16: true, but this device has no bf16 support; set it to auto or false")
    return supported if wanted == "auto" else bool(wanted)


def model_dtype(config: TrainingConfig) -> torch.dtype:
    if config.model.dtype != "auto":
        return getattr(torch, config.model.dtype)
    return torch.bfloat16 if use_bf16(config) else torch.float32


def load_tokenizer(config: TrainingConfig, data: PreferenceData | None = None):
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_location(config), revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
        )
    except OSError as error:  # transformers' "not a local folder and not a valid model identifier" and kin
        if config.model.name.startswith((".", "/", "~")) and not Path(config.model.name).expanduser().exists():
            raise ConfigError(
                f"model.name: {config.model.name!r}: no such folder. Fix: give the folder of a saved model, "
                f"a hub id, or {BUILTIN_MODEL}"
            ) from None
        reason = (str(error) or type(error).__name__).splitlines()[0]
        raise ConfigError(
            f"model.name: {config.model.name!r} cannot be loaded ({reason}). Fix: give a local model folder, a hub id this machine can download or has cached, or {BUILTIN_MODEL}"
        ) from None
    if tokenizer.pad_token is None:  # many causal LMs ship none; the collator needs one
        tokenizer.pad_token = tokenizer.eos_token
    if data is not None and data.conversational and not tokenizer.chat_template:
        raise ConfigError(
            f"data.source: {data.source} is conversational but model {config.model.name} has no chat template; "
            "use a chat model or flatten the data to prompt/chosen/rejected strings"
        )
    return tokenizer


def load_base_model(config: TrainingConfig):
    return AutoModelForCausalLM.from_pretrained(
        model_location(config),
        revision=config.model.revision,
        dtype=model_dtype(config),
        attn_implementation=config.model.attn_implementation,  # None: transformers' SDPA, eager where unsupported
        trust_remote_code=config.model.trust_remote_code,
    )


def check_max_length_fits(config: TrainingConfig) -> None:
    """A max_length beyond the model's positions would fail (or silently wrap) at the first long row."""
    model_config = AutoConfig.from_pretrained(
        model_location(config), revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions and config.orpo.max_length > positions:
        raise ConfigError(
            f"orpo.max_length: {config.orpo.max_length} exceeds the {positions} positions of model "
            f"{config.model.name}. Fix: set orpo.max_length to {positions} or less"
        )


def base_model_key(config: TrainingConfig) -> tuple:
    """What `load_base_model` depends on: a reused model with another key is never handed out."""
    model = config.model
    return (model_location(config), model.revision, str(model_dtype(config)), model.attn_implementation,
            model.trust_remote_code)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def release_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


