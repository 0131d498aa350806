"""The one module that imports TRL and PEFT. ORPO lives in `trl.experimental` and will move: keep it one file wide.

`run_orpo` trains one LoRA adapter with TRL's ORPOTrainer and returns every metric TRL logs, train and eval, as
final values and per-step curves. It fixes TRL's defaults that would silently spoil a sweep:
- `disable_dropout` is off, or the LoRA dropout being swept would be zeroed; the base model's own dropouts are
  still zeroed, so only the adapter's dropout varies between trials.
- bf16 only where the device supports it; gradient checkpointing only when the config asks for it.
- NaN/inf losses are never filtered or averaged away: any non-finite loss fails the trial.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import warnings

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
# ORPOConfig still names the field `gradient_checkpointing`; transformers 5 warns about the name on every trial.
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback, set_seed  # noqa: E402
from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt  # noqa: E402
from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402
from trl.trainer.utils import disable_dropout_in_model  # noqa: E402

from ..config import BUILTIN_MODEL, ConfigError, TrainingConfig  # noqa: E402
from ..faults import oom_micro_batch_limit  # noqa: E402
from ..data import PreferenceData, drop_long_prompts, load_preference_data  # noqa: E402
from ..metrics import EVAL, ORPO_METRICS, TRAIN, CurvePoint, TrialResult  # noqa: E402
from ..model import tiny_model_path  # noqa: E402

# Logged keys that are bookkeeping, not curves.
_NOT_CURVES = {"epoch", "total_flos", "train_loss"}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite. Its message is the failure reason stored with the trial."""

    def __init__(self, where: str):
        super().__init__("non-finite loss")
        self.where = where


def model_location(config: TrainingConfig) -> str:
    return str(tiny_model_path()) if config.model.name == BUILTIN_MODEL else config.model.name


def _use_bf16(config: TrainingConfig) -> bool:
    wanted = config.orpo.bf16
    supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if wanted is True and not supported:
        raise ConfigError("orpo.bf16: true, but this device has no bf16 support; set it to auto or false")
    return supported if wanted == "auto" else bool(wanted)


def _model_dtype(config: TrainingConfig) -> torch.dtype:
    if config.model.dtype != "auto":
        return getattr(torch, config.model.dtype)
    return torch.bfloat16 if _use_bf16(config) else torch.float32


def load_tokenizer(config: TrainingConfig, data: PreferenceData | None = None):
    tokenizer = AutoTokenizer.from_pretrained(
        model_location(config), revision=config.model.revision, trust_remote_code=config.model.trust_remote_code
    )
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
        dtype=_model_dtype(config),
        attn_implementation=config.model.attn_implementation,
        trust_remote_code=config.model.trust_remote_code,
    )


def attach_lora(base_model, config: TrainingConfig):
    """Fresh adapters on `base_model`, with only the adapters' dropout left active."""
    disable_dropout_in_model(base_model)
    lora = LoraConfig(task_type="CAUSAL_LM", **config.lora.model_dump())
    return get_peft_model(base_model, lora)


def to_text_pairs(dataset, tokenizer):
    """TRL's own prompt extraction and chat templating, done before training so long prompts can be counted."""
    dataset = dataset.map(maybe_extract_prompt)
    return dataset.map(maybe_apply_chat_template, fn_kwargs={"processing_class": tokenizer})


def orpo_arguments(config: TrainingConfig, output_dir: Path) -> ORPOConfig:
    orpo = config.orpo.model_dump()
    orpo["bf16"] = _use_bf16(config)
    return ORPOConfig(
        output_dir=str(output_dir),
        **orpo,
        disable_dropout=False,  # TRL's default zeroes LoRA dropout too
        eval_strategy="steps",
        eval_on_start=True,  # the curve's first point: where validation loss starts before training
        save_strategy="no",
        report_to=[],
        logging_nan_inf_filter=False,  # a NaN loss must show, not be averaged away
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


class _CurveRecorder(TrainerCallback):
    """Keeps every logged value as a curve point; the last train/eval logs become the final metrics."""

    def __init__(self) -> None:
        self.points: list[CurvePoint] = []
        self.last_train: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        split = EVAL if any(key.startswith("eval_") for key in logs) else TRAIN
        for key, value in logs.items():
            if key in _NOT_CURVES or not isinstance(value, (int, float)):
                continue
            metric = key.removeprefix("eval_") if split == EVAL else key
            self.points.append(CurvePoint(state.global_step, split, metric, float(value)))
        (self.last_eval if split == EVAL else self.last_train).update(
            {key: float(value) for key, value in logs.items() if isinstance(value, (int, float))}
        )


class _CheckedORPOTrainer(ORPOTrainer):
    """ORPOTrainer that fails fast on a non-finite loss instead of logging it as 0.0 or averaging it away."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        limit = oom_micro_batch_limit()
        if limit is not None and inputs["chosen_input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError(f"injected: micro-batch {inputs['chosen_input_ids'].shape[0]} > {limit}")
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        value = loss[0] if isinstance(loss, tuple) else loss
        if not torch.isfinite(value.detach()).all():
            raise NonFiniteLossError(f"train step {self.state.global_step}")
        return loss


def _check_finite(values: dict[str, float], where: str) -> None:
    watched = {key for key in values if key.removeprefix("eval_") in ORPO_METRICS}
    if any(not math.isfinite(values[key]) for key in watched):
        raise NonFiniteLossError(where)


def run_orpo(
    config: TrainingConfig,
    output_dir: str | Path,
    callbacks: list[TrainerCallback] | None = None,
    base_model=None,
) -> TrialResult:
    """Train one ORPO + LoRA run and return its final metrics and curves. Raises NonFiniteLossError."""
    started = time.perf_counter()
    data = load_preference_data(config.data)
    tokenizer = load_tokenizer(config, data)
    train = to_text_pairs(data.train, tokenizer)
    validation = to_text_pairs(data.validation, tokenizer)
    train, dropped_train = drop_long_prompts(train, tokenizer, config.orpo.max_length)
    validation, dropped_eval = drop_long_prompts(validation, tokenizer, config.orpo.max_length)
    if len(train) == 0 or len(validation) == 0:
        raise ConfigError(
            f"orpo.max_length: {config.orpo.max_length}: every {'training' if len(train) == 0 else 'validation'} "
            "prompt fills it, so no completion token is left; raise max_length or shorten the prompts"
        )

    set_seed(config.seed)  # LoRA initialisation is random: seed it before the adapters exist
    model = attach_lora(base_model if base_model is not None else load_base_model(config), config)
    recorder = _CurveRecorder()
    trainer = _CheckedORPOTrainer(
        model=model,
        args=orpo_arguments(config, Path(output_dir)),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        callbacks=[recorder, *(callbacks or [])],
    )
    trainer.remove_callback(PrinterCallback)  # curves are returned, not printed
    train_output = trainer.train()
    _check_finite(recorder.last_train, "training")
    final_eval = trainer.evaluate() if trainer.state.global_step % config.orpo.eval_steps else recorder.last_eval
    _check_finite(final_eval, "evaluation")

    train_metrics = {k: v for k, v in recorder.last_train.items() if not k.startswith("train_")}
    train_metrics.update({k: float(v) for k, v in train_output.metrics.items() if k != "epoch"})
    return TrialResult(
        train_metrics=train_metrics,
        eval_metrics={k: float(v) for k, v in final_eval.items() if k != "epoch"},
        curves=recorder.points,
        runtime_s=time.perf_counter() - started,
        effective_batch_size=config.effective_batch_size * max(1, trainer.args.world_size),
        global_steps=trainer.state.global_step,
        dropped_long_prompts=dropped_train + dropped_eval,
        train_rows=len(train),
        eval_rows=len(validation),
        micro_batch_size=config.orpo.per_device_train_batch_size,
        gradient_accumulation_steps=config.orpo.gradient_accumulation_steps,
    )


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


def lora_dropout_probabilities(model) -> set[float]:
    """The p of every LoRA dropout module in a PEFT model (checked by tests: the sweep must really vary it)."""
    return {
        float(module.p)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Dropout) and "lora_dropout" in name
    }


def orpo_config_fields() -> set[str]:
    import dataclasses

    return {field.name for field in dataclasses.fields(ORPOConfig)}


def lora_config_fields() -> set[str]:
    import dataclasses

    return {field.name for field in dataclasses.fields(LoraConfig)}


def describe_device() -> dict[str, Any]:
    if torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    return {"device": "cpu", "count": 1}
