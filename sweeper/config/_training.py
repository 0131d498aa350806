"""The training-config schema (`configs/*.yaml`). The pydantic models *are* the schema; each field says why.

The `orpo:` section uses `ORPOConfig`'s own field names and the `lora:` section `peft.LoraConfig`'s, so an
exported trial parses with TRL's `HfArgumentParser` and PEFT unchanged.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ._errors import ConfigError
from ._yaml import describe_validation_error, describe_yaml_error, load_yaml_text, read_yaml_mapping

BUILTIN_MODEL = "builtin:tiny-llama"
BUILTIN_BYTES_MODEL = "builtin:tiny-llama-bytes"  # the same tiny Llama reading UTF-8 bytes: any text, offline
BUILTIN_TASK = "builtin:sort-preference"


class _Strict(BaseModel):
    # Unknown keys are an error: a misspelt hyperparameter must never be silently ignored. An infinite or NaN
    # number (YAML's .inf, .nan) is an error too: every trial would fail on it.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ModelSection(_Strict):
    name: str = Field(BUILTIN_MODEL, description="`builtin:tiny-llama` (the built-in task's words), `builtin:tiny-llama-bytes` (any text, byte by byte), a hub id, or a local path to a causal LM.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to pin.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; `auto` = bfloat16 on a CUDA device that supports it, else float32."
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = Field(
        None, description="Attention kernel; None = transformers' default: SDPA, or eager where a model lacks it."
    )
    trust_remote_code: bool = Field(False, description="Allow a hub model's own Python code. Off: it runs code.")


class BuiltinTaskSection(_Strict):
    """The embedded synthetic preference task: sort a list of number words (see sweeper/data/_synthetic.py)."""

    n_train: int = Field(192, gt=0, description="Training pairs. Small on purpose, so aggressive settings overfit.")
    n_eval: int = Field(128, gt=0, description="Validation pairs, always clean.")
    label_noise: float = Field(0.15, ge=0, lt=0.5, description="Share of training pairs with chosen/rejected swapped.")
    min_items: int = Field(3, ge=2, description="Shortest list to sort.")
    max_items: int = Field(6, ge=2, description="Longest list to sort.")
    rejected: list[Literal["shuffled", "reversed", "changed"]] = Field(
        ["shuffled", "reversed", "changed"], min_length=1,
        description="Kinds of wrong answer, one drawn per pair: the list shuffled or reversed (order only), or sorted "
        "with one number changed (a near miss sharing every other token with the chosen answer).",
    )
    seed: int = Field(0, description="The task is a pure function of its options and this seed.")

    @model_validator(mode="after")
    def _items_ordered(self) -> "BuiltinTaskSection":
        if self.min_items > self.max_items:
            raise ValueError(f"min_items ({self.min_items}) is above max_items ({self.max_items}); swap them")
        return self


class ColumnMap(_Strict):
    prompt: str | None = Field("prompt", description="Prompt column; null for the implicit-prompt format.")
    chosen: str = "chosen"
    rejected: str = "rejected"


class DataSection(_Strict):
    source: str = Field(
        BUILTIN_TASK,
        description="`builtin:sort-preference`, a local .jsonl/.json/.parquet file, or a hub dataset id.",
    )
    split: str = Field(
        "train",
        description="Split to train on: a hub dataset's split, or a key of a local .json file whose top level is "
        'an object of row lists ({"train": [...], "test": [...]}). A .jsonl/.parquet file is one split.',
    )
    eval_split: str | None = Field(
        None, description="Split to validate on; None carves a deterministic validation set out of `split`."
    )
    validation_fraction: float = Field(0.1, gt=0, lt=1, description="Share held out when there is no eval_split.")
    split_seed: int = Field(0, description="Seed of the deterministic train/validation split.")
    max_train_rows: int | None = Field(None, gt=0, description="Cap on training rows, taken after the split.")
    max_eval_rows: int | None = Field(None, gt=0, description="Cap on validation rows: evaluation cost grows with it.")
    columns: ColumnMap = Field(default_factory=ColumnMap, description="Where prompt/chosen/rejected live.")
    builtin: BuiltinTaskSection = Field(default_factory=BuiltinTaskSection)


class OrpoSection(_Strict):
    """A subset of `trl.experimental.orpo.ORPOConfig`, field for field (names and meaning are TRL's)."""

    learning_rate: float = Field(5e-4, gt=0, description="Too high diverges, too low underfits.")
    per_device_train_batch_size: int = Field(8, gt=0, description="Micro-batch per device.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    per_device_eval_batch_size: int = Field(64, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay on the LoRA weights.")
    beta: float = Field(0.1, gt=0, description="ORPO's lambda: weight of the odds-ratio term; scales the rewards.")
    num_train_epochs: float = Field(3.0, gt=0)
    max_steps: int = Field(-1, description="If > 0, overrides num_train_epochs.")
    max_length: int = Field(64, gt=1, description="Prompt + completion tokens; TRL truncates only the completion.")
    warmup_steps: float = Field(0.0, ge=0, description="Steps, or a ratio of all steps when below 1.")
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = Field(1.0, ge=0)
    optim: str = "adamw_torch"
    logging_steps: int = Field(5, gt=0, description="Train curve resolution, in optimizer steps.")
    eval_steps: int = Field(10, gt=0, description="Validation cadence, in optimizer steps: each one costs a pass.")
    gradient_checkpointing: bool = Field(False, description="Trades compute for memory; slows tiny models down.")
    bf16: bool | Literal["auto"] = Field("auto", description="`auto`: only on a CUDA device that supports bf16.")
    dataloader_num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _training_length(self) -> "OrpoSection":
        if self.max_steps == 0:
            raise ValueError("max_steps is 0, so nothing would train; use -1 to train for num_train_epochs")
        return self


class LoraSection(_Strict):
    """A subset of `peft.LoraConfig`, field for field."""

    r: int = Field(8, gt=0, description="Adapter rank: higher = more capacity and memory.")
    lora_alpha: float = Field(16, gt=0, description="Scale of the adapter update is lora_alpha / r.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input; 0 disables.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Module names to adapt, or `all-linear` for every linear layer but the head."
    )
    bias: Literal["none", "all", "lora_only"] = "none"

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if not value:
            raise ValueError("target_modules is empty; name the modules to adapt or use `all-linear`")
        return value


class ComputeSection(_Strict):
    """How the loss is computed, not what it is: a switch here changes memory and speed, never the metrics."""

    lean_orpo_forward: bool = Field(
        False,
        description="Compute ORPO's log-probs from the last hidden state in chunks instead of TRL's full-vocabulary "
        "logits (same metrics, within float rounding). Saves the most memory for large vocabularies (Qwen: 152k); "
        "costs one extra output-layer pass on backward. Decoder-only models whose forward takes `logits_to_keep`.",
    )
    logit_chunk_tokens: int = Field(
        1024,
        gt=0,
        description="Tokens per chunk of the lean forward; a chunk's float32 logits take this x vocab x 4 bytes "
        "(1024 x 152k = 0.6 GB), held a few times over while reduced. Smaller saves memory, larger is fewer kernels.",
    )


class TrainingConfig(_Strict):
    """One ORPO + LoRA training run: model, data, ORPO/training arguments, LoRA, compute options, seed."""

    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    orpo: OrpoSection = Field(default_factory=OrpoSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    seed: int = Field(0, description="Seeds adapters, data order and dropout: same config + seed = same metrics.")

    @property
    def effective_batch_size(self) -> int:
        """Per-device; the trainer multiplies by the device count."""
        return self.orpo.per_device_train_batch_size * self.orpo.gradient_accumulation_steps


def parse_override(text: str) -> tuple[str, Any]:
    """`orpo.learning_rate=1e-3` -> ("orpo.learning_rate", 0.001). Values are YAML scalars or lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. orpo.learning_rate=1e-4")
    try:
        value = load_yaml_text(raw)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {text!r}: the value is {describe_yaml_error(error)}, or quote it") from None
    return key.strip(), value


def set_dotted(data: dict[str, Any], dotted_key: str, value: Any, source: str = "--set") -> None:
    """Set `a.b.c` in nested dicts, creating sections. Unknown names are caught by validation afterwards."""
    parts = dotted_key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {dotted_key}: {part!r} holds a value, not a section")
        node = child
    node[parts[-1]] = value


def validate_training_config(data: dict[str, Any], source: str) -> TrainingConfig:
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(source, error)) from None


LOCAL_DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


def _is_local_path(source: str) -> bool:
    """A data.source that names a file (a hub id such as `owner/name` has none of these shapes)."""
    return source.endswith(LOCAL_DATA_SUFFIXES) or source.startswith((".", "/", "~"))


def resolve_data_source(source: Any, folder: Path) -> Any:
    """A local data file named relative to `folder` (a config file's), made absolute so that a trial, a worker on
    another working directory and an exported config all read the same file. Where the file is not there but is
    relative to the working directory (how sweeper read it before), that one is taken."""
    if not isinstance(source, str) or source == BUILTIN_TASK or not _is_local_path(source):
        return source
    path = Path(source).expanduser()
    if path.is_absolute():
        return str(path)
    beside = (folder / path).resolve()
    if beside.exists() or not path.exists():
        return str(beside)
    return str(path.resolve())


def read_training_mapping(path: str | Path) -> dict[str, Any]:
    """A training config file as a mapping, its data.source resolved against the file's folder."""
    data = read_yaml_mapping(path)
    section = data.get("data")
    if isinstance(section, dict) and "source" in section:
        section["source"] = resolve_data_source(section["source"], Path(path).resolve().parent)
    return data


def load_training_config(
    path: str | Path, overrides: list[str] | dict[str, Any] | None = None
) -> TrainingConfig:
    """Read and validate a config file, applying `--set` style overrides first. A data.source in the file is
    relative to the file's folder; one given as an override, to the working directory."""
    data = read_training_mapping(path)
    pairs = overrides.items() if isinstance(overrides, dict) else [parse_override(text) for text in overrides or []]
    resolved = {
        key: resolve_data_source(value, Path.cwd()) if key == "data.source" else value for key, value in pairs
    }
    return build_training_config(data, resolved, source=str(path))


def build_training_config(
    data: dict[str, Any], overrides: list[str] | dict[str, Any] | None = None, source: str = "config"
) -> TrainingConfig:
    data = copy.deepcopy(data)
    pairs = overrides.items() if isinstance(overrides, dict) else [parse_override(text) for text in overrides or []]
    for key, value in pairs:
        set_dotted(data, key, value)
    return validate_training_config(data, source)


def config_to_yaml(config: TrainingConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
