"""The one module that imports TRL and PEFT. ORPO lives in `trl.experimental` and will move: keep it one file wide.

`run_orpo` trains one LoRA adapter with TRL's ORPOTrainer and returns every metric TRL logs, train and eval, as
final values and per-step curves. It fixes TRL's defaults that would silently spoil a sweep:
- `disable_dropout` is off, or the LoRA dropout being swept would be zeroed; the base model's own dropouts are
  still zeroed, so only the adapter's dropout varies between trials.
- bf16 only where the device supports it; SDPA attention unless the config names another kernel;
  gradient checkpointing only when the config asks for it (or `run_trial`'s out-of-memory retry turns it on).
- `compute.lean_orpo_forward` swaps TRL's full-vocabulary logits for chunked ones (`_lean_logps.py`), same metrics.
- NaN/inf losses are never filtered or averaged away: any non-finite loss fails the trial.
"""

from __future__ import annotations

import inspect
import math
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import warnings

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
# ORPOConfig still names the field `gradient_checkpointing`; transformers 5 warns about the name on every trial.
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback, set_seed  # noqa: E402
from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt  # noqa: E402
from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402
from trl import __version__ as trl_version  # noqa: E402
from trl.trainer.utils import disable_dropout_in_model  # noqa: E402

from ..config import BUILTIN_BYTES_MODEL, BUILTIN_MODEL, ConfigError, TrainingConfig  # noqa: E402
from ..faults import oom_micro_batch_limit, oom_without_gradient_checkpointing  # noqa: E402
from ..data import (  # noqa: E402
    PreferenceData,
    SplitCheck,
    check_split,
    check_split_sizes,
    data_warnings,
    drop_long_prompts,
    load_preference_data,
)
from ..metrics import EVAL, ORPO_METRICS, CurvePoint, TrialResult, curve_points, split_of_log  # noqa: E402
from ..model import BYTES_SHAPE, tiny_model_path  # noqa: E402
from ._lean_logps import captured_output, lean_orpo_forward  # noqa: E402
from ._reuse import TrialReuse, content_key, local_file_stamp, tokenizer_fingerprint  # noqa: E402


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite. Its message is the failure reason stored with the trial."""

    def __init__(self, where: str):
        super().__init__("non-finite loss")
        self.where = where


def model_location(config: TrainingConfig) -> str:
    if config.model.name == BUILTIN_MODEL:
        return str(tiny_model_path())
    if config.model.name == BUILTIN_BYTES_MODEL:
        return str(tiny_model_path(BYTES_SHAPE))
    return config.model.name


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
        dtype=_model_dtype(config),
        attn_implementation=config.model.attn_implementation,  # None: transformers' SDPA, eager where unsupported
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
        self.points.extend(curve_points(state.global_step, logs))
        (self.last_eval if split_of_log(logs) == EVAL else self.last_train).update(
            {key: float(value) for key, value in logs.items() if isinstance(value, (int, float))}
        )


class _CheckedORPOTrainer(ORPOTrainer):
    """ORPOTrainer that fails fast on a non-finite loss instead of logging it as 0.0 or averaging it away.

    With `logit_chunk_tokens` set (config `compute.lean_orpo_forward`), its forward never holds full-vocabulary
    logits: see `_lean_logps.py`. Loss and metrics are still TRL's own code, fed the same quantities.

    With `tokenized=(train, eval)`, datasets TRL's own `__init__` tokenized for an earlier trial, TRL is handed no
    rows to tokenize and the trainer trains on those instead.
    """

    def __init__(self, *args, logit_chunk_tokens: int | None = None, tokenized: tuple | None = None, **kwargs):
        if tokenized is not None:
            kwargs["train_dataset"] = kwargs["train_dataset"].select([])
            kwargs["eval_dataset"] = kwargs["eval_dataset"].select([])
        super().__init__(*args, **kwargs)
        if tokenized is not None:
            self.train_dataset, self.eval_dataset = tokenized
        self.logit_chunk_tokens = logit_chunk_tokens
        if logit_chunk_tokens is not None:
            _check_lean_forward_supported(self.model)

    def concatenated_forward(self, model, batch):
        if self.logit_chunk_tokens is None:
            return super().concatenated_forward(model, batch)
        concatenated = self.concatenated_inputs(
            batch, padding_value=self.padding_value, device=self.accelerator.device
        )
        language_model = self.accelerator.unwrap_model(model)
        extra = {"output_router_logits": True} if self.aux_loss_enabled else {}
        with captured_output(language_model.get_decoder()) as decoder_outputs:
            # logits_to_keep=1: the model's own head runs on one position only, which also checks ours below
            outputs = model(
                concatenated["concatenated_input_ids"],
                attention_mask=concatenated["concatenated_attention_mask"],
                use_cache=False,
                logits_to_keep=1,
                **extra,
            )
        hidden = decoder_outputs[-1].last_hidden_state
        head = language_model.get_output_embeddings()
        softcap = getattr(language_model.config, "final_logit_softcapping", None)
        with torch.no_grad():
            last_logits = head(hidden[:, -1:])
            if softcap is not None:
                last_logits = torch.tanh(last_logits / softcap) * softcap
            # loose enough for bf16 rounding, far tighter than any logit scaling or soft-capping a model applies
            if not torch.allclose(last_logits.float(), outputs.logits.float(), rtol=1e-2, atol=1e-2):
                raise ConfigError(
                    f"compute.lean_orpo_forward: {language_model.config.model_type} models' logits are not their "
                    "output layer applied to the decoder's last hidden state (they are scaled or post-processed); "
                    "set compute.lean_orpo_forward: false for this model"
                )
        lean = lean_orpo_forward(
            hidden,
            head,
            concatenated["concatenated_input_ids"],
            concatenated["concatenated_attention_mask"],
            concatenated["concatenated_labels"],
            n_chosen=batch["chosen_labels"].shape[0],
            vocab_size=outputs.logits.shape[-1],
            chunk_tokens=self.logit_chunk_tokens,
            logit_softcap=softcap,
        )
        # TRL's metrics take `.mean()` of the chosen/rejected logits, so their 0-d means stand in for them.
        forward = (lean.chosen_logps, lean.rejected_logps, lean.chosen_logits_mean, lean.rejected_logits_mean)
        forward += (lean.chosen_nll_loss,)
        return (*forward, outputs.aux_loss) if self.aux_loss_enabled else forward

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        limit = oom_micro_batch_limit()
        if limit is not None and inputs["chosen_input_ids"].shape[0] > limit:
            raise torch.OutOfMemoryError(f"injected: micro-batch {inputs['chosen_input_ids'].shape[0]} > {limit}")
        if oom_without_gradient_checkpointing() and not model.is_gradient_checkpointing:
            raise torch.OutOfMemoryError("injected: out of memory without gradient checkpointing")
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        value = loss[0] if isinstance(loss, tuple) else loss
        if not torch.isfinite(value.detach()).all():
            raise NonFiniteLossError(f"train step {self.state.global_step}")
        return loss


def _check_lean_forward_supported(model) -> None:
    model_type = model.config.model_type
    if model.config.is_encoder_decoder:
        raise ConfigError(
            f"compute.lean_orpo_forward: {model_type} is an encoder-decoder model; the lean forward supports "
            "decoder-only models; set compute.lean_orpo_forward: false"
        )
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        raise ConfigError(
            f"compute.lean_orpo_forward: {model_type}'s forward takes no `logits_to_keep`, so it would still "
            "compute full logits; set compute.lean_orpo_forward: false for this model"
        )


def _check_finite(values: dict[str, float], where: str) -> None:
    watched = {key for key in values if key.removeprefix("eval_") in ORPO_METRICS}
    if any(not math.isfinite(values[key]) for key in watched):
        raise NonFiniteLossError(where)


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
    return (model_location(config), model.revision, str(_model_dtype(config)), model.attn_implementation,
            model.trust_remote_code)


def _pairs_key(config: TrainingConfig) -> tuple:
    model = config.model
    return (config.data.model_dump_json(), local_file_stamp(config.data.source), model_location(config),
            model.revision, model.trust_remote_code, config.orpo.max_length)


def _tokenized_key(pairs: PreparedPairs, config: TrainingConfig, model) -> str:
    """Everything TRL's `tokenize_row` output depends on; its code is pinned by TRL's version."""
    return content_key(
        data=pairs.data_fingerprint,
        tokenizer=pairs.tokenizer_fingerprint,
        max_length=config.orpo.max_length,
        encoder_decoder=bool(model.config.is_encoder_decoder),
        trl=trl_version,
        rows=(len(pairs.train), len(pairs.validation)),
    )


def run_orpo(
    config: TrainingConfig,
    output_dir: str | Path,
    callbacks: list[TrainerCallback] | None = None,
    base_model=None,
    reuse: TrialReuse | None = None,
) -> TrialResult:
    """Train one ORPO + LoRA run and return its final metrics and curves. Raises NonFiniteLossError.

    With `reuse` (one per worker, see `_reuse.py`), the base model, the text pairs and the tokenized datasets come
    from earlier trials where their keys match, and the base model is handed back clean after the trial.
    """
    started = time.perf_counter()
    if reuse is None:
        pairs = prepare_pairs(config)
        base = base_model if base_model is not None else load_base_model(config)
        tokenized = None
    else:
        pairs = reuse.pairs(_pairs_key(config), lambda: prepare_pairs(config))
        base = base_model if base_model is not None else reuse.base_model(
            base_model_key(config), lambda: load_base_model(config)
        )
        tokenized_key = _tokenized_key(pairs, config, base)
        tokenized = reuse.tokenized(tokenized_key)

    model = None
    try:
        set_seed(config.seed)  # LoRA initialisation is random: seed it before the adapters exist
        model = attach_lora(base, config)
        recorder = _CurveRecorder()
        trainer = _CheckedORPOTrainer(
            model=model,
            args=orpo_arguments(config, Path(output_dir)),
            train_dataset=pairs.train,
            eval_dataset=pairs.validation,
            processing_class=pairs.tokenizer,
            callbacks=[recorder, *(callbacks or [])],
            logit_chunk_tokens=config.compute.logit_chunk_tokens if config.compute.lean_orpo_forward else None,
            tokenized=tokenized,
        )
        if reuse is not None and tokenized is None:
            reuse.store_tokenized(tokenized_key, trainer.train_dataset, trainer.eval_dataset)
        trainer.remove_callback(PrinterCallback)  # curves are returned, not printed
        train_output = trainer.train()
        _check_finite(recorder.last_train, "training")
        final_eval = trainer.evaluate() if trainer.state.global_step % config.orpo.eval_steps else recorder.last_eval
        _check_finite(final_eval, "evaluation")
    finally:
        if reuse is not None and reuse.holds(base):
            if model is not None:
                model.unload()  # the adapters leave; the base modules PEFT wrapped are put back in place
            reuse.return_base_model(base)  # checked: anything left behind and the next trial loads afresh

    train_metrics = {k: v for k, v in recorder.last_train.items() if not k.startswith("train_")}
    train_metrics.update({k: float(v) for k, v in train_output.metrics.items() if k != "epoch"})
    return TrialResult(
        train_metrics=train_metrics,
        eval_metrics={k: float(v) for k, v in final_eval.items() if k != "epoch"},
        curves=recorder.points,
        runtime_s=time.perf_counter() - started,
        effective_batch_size=config.effective_batch_size * max(1, trainer.args.world_size),
        global_steps=trainer.state.global_step,
        dropped_long_prompts=pairs.dropped_train + pairs.dropped_eval,
        train_rows=len(pairs.train),
        eval_rows=len(pairs.validation),
        micro_batch_size=config.orpo.per_device_train_batch_size,
        gradient_accumulation_steps=config.orpo.gradient_accumulation_steps,
        dataset_fingerprint=pairs.data_fingerprint,
        bf16=bool(trainer.args.bf16),
        notes=list(pairs.warnings),
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


def parse_with_trl_and_peft(config: TrainingConfig) -> tuple[ORPOConfig, LoraConfig]:
    """The `orpo:` section through TRL's own `HfArgumentParser((ORPOConfig,))` (unknown keys refused) and the `lora:`
    section into `peft.LoraConfig`: an exported config means to TRL and PEFT what it meant to the sweep.

    `bf16: auto` is resolved for this device (ORPOConfig takes a boolean), and `use_cpu` is set where no GPU is, as
    `orpo_arguments` does, so that a config exported from a GPU sweep still parses on a CPU machine.
    """
    from transformers import HfArgumentParser

    orpo = config.orpo.model_dump()
    orpo["bf16"] = _use_bf16(config) if config.orpo.bf16 == "auto" else bool(config.orpo.bf16)
    (orpo_config,) = HfArgumentParser((ORPOConfig,)).parse_dict(
        {**orpo, "use_cpu": not torch.cuda.is_available()}, allow_extra_keys=False
    )
    return orpo_config, LoraConfig(task_type="CAUSAL_LM", **config.lora.model_dump())
