"""What a worker computes once and reuses across its trials: the base model, the prepared text pairs and the
tokenized datasets. No TRL or PEFT here: `_pairs.py` computes the keys, `_orpo.py` attaches/removes the adapters.

- The base model is loaded once per key (model, revision, dtype, attention kernel, remote code) and each trial puts
  fresh LoRA adapters on it. Afterwards the adapters are unloaded and everything a trial changes on the module
  (hooks, gradient checkpointing, requires_grad, train mode, added attributes) is put back; then the model is
  checked against what was loaded: same module types, same hooks, same config and bit-identical weights. Any
  difference drops the model, with a warning saying what differed, and the next trial loads it afresh.
- Text pairs (rows validated, chat-templated, long prompts dropped) are kept in memory per data section, tokenizer
  and max length; a local data file's size and modification time are part of the key, so editing it is a miss.
- Tokenized datasets are kept in memory and on disk under the sweeper cache folder, keyed by the data's content
  fingerprint, the tokenizer's fingerprint, max length and the tokenizing code's version, so that other workers
  (and later sweeps) skip tokenization too. Written to a scratch folder and renamed, as `_cache.build_once` does.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._cache import build_once, cache_dir

log = logging.getLogger(__name__)

# Bump when the way tokenized datasets are produced or stored changes: old cache entries then simply miss.
TOKENIZED_FORMAT = 1
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """BLAKE2 of every parameter's and buffer's raw bits, in name order: equal only for bit-identical weights."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        flat = tensor.detach().reshape(-1)
        if flat.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16: hash the 16-bit patterns
            flat = flat.view(torch.int16)
        digest.update(memoryview(flat.cpu().contiguous().numpy()).cast("B"))
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Everything about a tokenizer that changes the ids it produces: its vocabulary and rules, special tokens, chat
    template and padding side."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    payload = {
        "class": type(tokenizer).__name__,
        "rules": backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items()),
        "special": {key: str(value) for key, value in sorted(tokenizer.special_tokens_map.items())},
        "chat_template": tokenizer.chat_template,
        "padding_side": tokenizer.padding_side,
        "truncation_side": tokenizer.truncation_side,
        "add_bos": getattr(tokenizer, "add_bos_token", None),
        "add_eos": getattr(tokenizer, "add_eos_token", None),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def content_key(**parts: Any) -> str:
    """A short stable digest of JSON-able parts: the name of a cache entry."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass
class _ModuleState:
    """What a trial may change on the base module besides its weights, taken after loading."""

    structure: list[tuple[str, str]]
    hooks: dict[int, dict[str, set[int]]]
    requires_grad: dict[str, bool]
    training: bool
    checkpointing: bool
    attributes: set[str]
    config: str

    @classmethod
    def of(cls, model: torch.nn.Module) -> _ModuleState:
        return cls(
            structure=[(name, type(module).__name__) for name, module in model.named_modules()],
            hooks={id(module): _hook_ids(module) for module in model.modules()},
            requires_grad={name: parameter.requires_grad for name, parameter in model.named_parameters()},
            training=model.training,
            checkpointing=_is_checkpointing(model),
            attributes=set(vars(model)),
            config=_config_text(model),
        )

    def restore(self, model: torch.nn.Module) -> None:
        """Undo what training left on the module: hooks the trainer or PEFT registered, checkpointing, flags."""
        if _is_checkpointing(model) and not self.checkpointing:
            disable = getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable
            disable()
        for module in model.modules():
            kept = self.hooks.get(id(module), {})
            for attribute in _HOOK_DICTS:
                hooks = getattr(module, attribute, None)
                if hooks is None:
                    continue
                for hook_id in [hook_id for hook_id in hooks if hook_id not in kept.get(attribute, set())]:
                    del hooks[hook_id]
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(self.requires_grad.get(name, parameter.requires_grad))
        model.train(self.training)
        for attribute in set(vars(model)) - self.attributes:
            delattr(model, attribute)
        config = getattr(model, "config", None)
        if config is not None:  # the trainer turns `use_cache` off for training; put such plain switches back
            loaded = json.loads(self.config)
            now = json.loads(_config_text(model))
            for key, value in loaded.items():
                if now.get(key) != value and (value is None or isinstance(value, bool | int | float | str)):
                    setattr(config, key, value)

    def differences(self, model: torch.nn.Module) -> list[str]:
        now = _ModuleState.of(model)
        found = []
        if now.structure != self.structure:
            changed = sorted(set(now.structure) ^ set(self.structure))[:3]
            found.append(f"module layout differs (e.g. {changed})")
        if now.hooks != self.hooks:
            found.append("hooks differ")
        if now.requires_grad != self.requires_grad:
            found.append("requires_grad flags differ")
        if now.checkpointing != self.checkpointing:
            found.append("gradient checkpointing differs")
        if now.config != self.config:
            found.append("model config differs")
        return found


def _hook_ids(module: torch.nn.Module) -> dict[str, set[int]]:
    return {attribute: set(getattr(module, attribute, None) or ()) for attribute in _HOOK_DICTS}


def _is_checkpointing(model: torch.nn.Module) -> bool:
    return bool(getattr(model, "is_gradient_checkpointing", False))


def _config_text(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    return config.to_json_string(use_diff=False) if config is not None else ""


@dataclass
class ReuseCounts:
    """What was computed and what was reused, for tests, logs and benchmarks."""

    model_loads: int = 0
    model_reuses: int = 0
    model_reloads_after_change: int = 0
    pairs_built: int = 0
    pairs_reused: int = 0
    tokenized_built: int = 0
    tokenized_from_memory: int = 0
    tokenized_from_disk: int = 0


@dataclass
class _LoadedModel:
    key: Hashable
    model: torch.nn.Module
    fingerprint: str
    state: _ModuleState


@dataclass
class TrialReuse:
    """Held by one worker for its lifetime and passed to each of its trials (`run_trial(..., reuse=...)`).

    `persist_tokenized=False` keeps tokenized datasets in memory only; `check_weights=False` skips the weights
    fingerprint (a hash of every weight, about a second per GB).
    """

    persist_tokenized: bool = True
    check_weights: bool = True
    counts: ReuseCounts = field(default_factory=ReuseCounts)
    _loaded: _LoadedModel | None = None
    _pairs: dict[Hashable, Any] = field(default_factory=dict)
    _tokenized: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    # -- base model

    def base_model(self, key: Hashable, load: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        """The base model for `key`, loaded by `load()` when none is held or the held one has another key."""
        if self._loaded is not None and self._loaded.key == key:
            self.counts.model_reuses += 1
            return self._loaded.model
        self.drop_model()  # free the old one before the new one takes memory
        model = load()
        fingerprint = weights_fingerprint(model) if self.check_weights else ""
        self._loaded = _LoadedModel(key, model, fingerprint, _ModuleState.of(model))
        self.counts.model_loads += 1
        return model

    @property
    def held_model(self) -> torch.nn.Module | None:
        return self._loaded.model if self._loaded is not None else None

    def holds(self, model: torch.nn.Module) -> bool:
        return self._loaded is not None and self._loaded.model is model

    def return_base_model(self, model: torch.nn.Module) -> None:
        """After a trial, with its adapters unloaded: restore the module and keep it only if it is as loaded."""
        if not self.holds(model):
            return
        loaded = self._loaded
        loaded.state.restore(model)
        problems = loaded.state.differences(model)
        if self.check_weights and weights_fingerprint(model) != loaded.fingerprint:
            problems.append("weights changed")
        if problems:
            log.warning(
                "the reused base model %s is not as loaded after the trial (%s); the next trial loads it afresh",
                loaded.key, "; ".join(problems),
            )
            self.counts.model_reloads_after_change += 1
            self.drop_model()

    def drop_model(self) -> None:
        self._loaded = None

    # -- text pairs and tokenized datasets

    def pairs(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """`build()`'s result, computed once per key for this worker."""
        if key in self._pairs:
            self.counts.pairs_reused += 1
            return self._pairs[key]
        self._pairs[key] = value = build()
        self.counts.pairs_built += 1
        return value

    def tokenized(self, key: str) -> tuple[Any, Any] | None:
        """(train, eval) tokenized datasets for `key` from memory or the disk cache, or None."""
        if key in self._tokenized:
            self.counts.tokenized_from_memory += 1
            return self._tokenized[key]
        folder = tokenized_cache_folder(key)
        if not self.persist_tokenized or not folder.exists():
            return None
        import datasets

        loaded = (datasets.load_from_disk(str(folder / "train")), datasets.load_from_disk(str(folder / "eval")))
        self._tokenized[key] = loaded
        self.counts.tokenized_from_disk += 1
        return loaded

    def store_tokenized(self, key: str, train: Any, evaluation: Any) -> None:
        self._tokenized[key] = (train, evaluation)
        self.counts.tokenized_built += 1
        if self.persist_tokenized:
            build_once(tokenized_cache_folder(key), lambda scratch: _save_pair(scratch, train, evaluation))


def tokenized_cache_folder(key: str) -> Path:
    return cache_dir() / "tokenized" / f"orpo-{TOKENIZED_FORMAT}-{key}"


def _save_pair(folder: Path, train: Any, evaluation: Any) -> None:
    train.save_to_disk(str(folder / "train"))
    evaluation.save_to_disk(str(folder / "eval"))


def local_file_stamp(source: str) -> tuple[int, int] | None:
    """(size, modification time) of a local data file, so that an edited file is a different key; None otherwise."""
    path = Path(source).expanduser()
    if not path.is_file():
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
