"""The one module that imports TRL and PEFT. ORPO lives in `trl.experimental` and will move: keep this file small.

ORPOConfig and LoraConfig are built here only (`orpo_fields`, `lora_config`), for training and for checking an
exported config alike, and the trainer is TRL's ORPOTrainer with two changes (`_CheckedORPOTrainer`):
- NaN/inf losses are never filtered or averaged away: any non-finite loss fails the trial.
- `compute.lean_orpo_forward` swaps TRL's full-vocabulary logits for chunked ones (`_lean_logps.py`), same metrics.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
# ORPOConfig still names the field `gradient_checkpointing`; transformers 5 warns about the name on every trial.
warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)

import torch  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402
from peft.tuners.lora import Linear as LoraLinear  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402
from trl import __version__ as TRL_VERSION  # noqa: E402, N812
from trl.data_utils import maybe_apply_chat_template, maybe_extract_prompt  # noqa: E402
from trl.experimental.orpo import ORPOConfig, ORPOTrainer  # noqa: E402
from trl.trainer.utils import disable_dropout_in_model  # noqa: E402

from ..config import ConfigError, TrainingConfig  # noqa: E402
from ..faults import oom_micro_batch_limit, oom_without_gradient_checkpointing  # noqa: E402
from ._lean_logps import captured_output, lean_orpo_forward  # noqa: E402
from ._models import use_bf16  # noqa: E402

__all__ = ["TRL_VERSION", "ORPOTrainer"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite. Its message is the failure reason stored with the trial."""

    def __init__(self, where: str):
        super().__init__("non-finite loss")
        self.where = where


def orpo_fields(config: TrainingConfig) -> dict[str, Any]:
    """The `orpo:` section as ORPOConfig takes it on this machine: `bf16: auto` resolved for the device (ORPOConfig
    takes a boolean), an explicit value kept (TRL accepts bf16 on a CPU), `use_cpu` where no GPU is."""
    bf16 = use_bf16(config) if config.orpo.bf16 == "auto" else bool(config.orpo.bf16)
    return {**config.orpo.model_dump(), "bf16": bf16, "use_cpu": not torch.cuda.is_available()}


def lora_config(config: TrainingConfig) -> LoraConfig:
    return LoraConfig(task_type="CAUSAL_LM", **config.lora.model_dump())


def attach_lora(base_model, config: TrainingConfig):
    """Fresh adapters on `base_model`, with only the adapters' dropout left active."""
    disable_dropout_in_model(base_model)
    return get_peft_model(base_model, lora_config(config))


def add_adapter(model, name: str, config: TrainingConfig) -> PeftModel:
    """Fresh adapters called `name` for one trial of a pack: on a base model (which becomes a PeftModel) or beside
    the adapters a PeftModel already has. PEFT initialises them exactly as `attach_lora` would after the same seed.
    Every adapter stays trainable: PEFT leaves only the active one trainable when adapters come and go."""
    if isinstance(model, PeftModel):
        model.add_adapter(name, lora_config(config))
    else:
        disable_dropout_in_model(model)
        model = get_peft_model(model, lora_config(config), adapter_name=name)
    _keep_adapters_trainable(model)
    return model


def remove_adapter(model: PeftModel, name: str):
    """Drops one trial's adapters; returns the PeftModel, or the clean base model once the last adapters left."""
    if list(model.peft_config) == [name]:
        return model.unload()
    model.delete_adapter(name)
    _keep_adapters_trainable(model)
    return model


def adapter_parameters(model: PeftModel, name: str) -> dict[str, torch.nn.Parameter]:
    """One trial's adapter weights by their name in the model (`...lora_A.<name>.weight`)."""
    return {key: value for key, value in model.named_parameters() if _adapter_of(key) == name}


def _adapter_of(parameter_name: str) -> str | None:
    parts = parameter_name.split(".")
    for prefix in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"):
        if prefix in parts[:-1]:
            return parts[parts.index(prefix) + 1]
    return None


def _keep_adapters_trainable(model: PeftModel) -> None:
    for key, parameter in model.named_parameters():
        if _adapter_of(key) in model.peft_config:
            parameter.requires_grad_(True)


@contextmanager
def rows_to_adapters(model: PeftModel, segments: list[tuple[str, int]]):
    """Each run of rows through its own trial's adapters: `segments` are (adapter name, rows) in batch order. Every
    LoRA layer computes its base output once for the whole batch and each trial's low-rank update on its own rows,
    as PEFT's LoRA layer computes them for one adapter (PEFT's own mixed-adapter batches refuse training mode and
    gather rows by index lists; a trial's rows here are one contiguous slice)."""
    layers = [module for module in model.modules() if isinstance(module, LoraLayer)]
    for layer in layers:
        if not isinstance(layer, LoraLinear) or any(layer.use_dora.get(name) for name, _ in segments):
            raise ConfigError(
                f"packed trials (pack above 1) support plain LoRA on linear layers, not {type(layer).__name__}"
                f"{' with DoRA' if isinstance(layer, LoraLinear) else ''}; set pack: 1 for this model or config"
            )
        layer.forward = partial(_segmented_lora_forward, layer, segments)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def _segmented_lora_forward(layer, segments, x, *args, **kwargs):
    result = layer.base_layer(x, *args, **kwargs)
    updates = []
    start = 0
    for name, rows in segments:
        part = x[start : start + rows]
        start += rows
        if name not in layer.lora_A:  # this trial's target_modules leave this layer alone
            updates.append(result.new_zeros((*part.shape[:-1], result.shape[-1])))
            continue
        lora_A, lora_B = layer.lora_A[name], layer.lora_B[name]
        part = part.to(lora_A.weight.dtype)
        updates.append((lora_B(lora_A(layer.lora_dropout[name](part))) * layer.scaling[name]).to(result.dtype))
    return result + torch.cat(updates)


def to_text_pairs(dataset, tokenizer):
    """TRL's own prompt extraction and chat templating, done before training so long prompts can be counted."""
    dataset = dataset.map(maybe_extract_prompt)
    return dataset.map(maybe_apply_chat_template, fn_kwargs={"processing_class": tokenizer})


def orpo_arguments(config: TrainingConfig, output_dir: Path) -> ORPOConfig:
    """The trainer's arguments: the config's `orpo:` section as `orpo_fields` resolves it, and what every trial of a
    sweep needs whatever the config says. `bf16: true` on a device without bf16 is refused here, before training."""
    use_bf16(config)
    return ORPOConfig(
        output_dir=str(output_dir),
        **orpo_fields(config),
        disable_dropout=False,  # TRL's default zeroes LoRA dropout too
        eval_strategy="steps",
        eval_on_start=True,  # the curve's first point: where validation loss starts before training
        save_strategy="no",
        report_to=[],
        logging_nan_inf_filter=False,  # a NaN loss must show, not be averaged away
        seed=config.seed,
        data_seed=config.seed,
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


class _CheckedORPOTrainer(ORPOTrainer):
    """ORPOTrainer that fails fast on a non-finite loss instead of logging it as 0.0 or averaging it away.

    With `logit_chunk_tokens` set (config `compute.lean_orpo_forward`), its forward never holds full-vocabulary
    logits: see `_lean_logps.py`. Loss and metrics are still TRL's own code, fed the same quantities.

    With `tokenized=(train, eval)`, datasets TRL's own `__init__` tokenized for an earlier trial, TRL is handed no
    rows to tokenize and the trainer trains on those instead.
    """

    def __init__(
        self,
        *args,
        logit_chunk_tokens: int | None = None,
        tokenized: tuple | None = None,
        shared_backward: Callable[[torch.Tensor], None] | None = None,
        **kwargs,
    ):
        if tokenized is not None:
            kwargs["train_dataset"] = kwargs["train_dataset"].select([])
            kwargs["eval_dataset"] = kwargs["eval_dataset"].select([])
        super().__init__(*args, **kwargs)
        if tokenized is not None:
            self.train_dataset, self.eval_dataset = tokenized
        if shared_backward is not None:  # a packed trial: its loss joins the pack's one backward (`_pack.py`)
            self.accelerator.backward = partial(_scaled_backward, self.accelerator, shared_backward)
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
        inputs = dict(attention_mask=concatenated["concatenated_attention_mask"], use_cache=False, logits_to_keep=1)
        head = language_model.get_output_embeddings()
        if getattr(language_model, "pack_name", None) is not None:
            # a packed trial: the pack runs the model (and checks its head) and hands back this trial's hidden state;
            # a forward hook on the shared decoder would also see the other trials' forwards
            outputs = model(concatenated["concatenated_input_ids"], **inputs, **extra)
            hidden = outputs.hidden_states[-1]
        else:
            with captured_output(language_model.get_decoder()) as decoder_outputs:
                # logits_to_keep=1: the model's own head runs on one position only, which also checks ours
                outputs = model(concatenated["concatenated_input_ids"], **inputs, **extra)
            hidden = decoder_outputs[-1].last_hidden_state
            check_plain_output_layer(language_model.config, head, hidden, outputs.logits)
        softcap = getattr(language_model.config, "final_logit_softcapping", None)
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


def check_plain_output_layer(config, head: torch.nn.Module, hidden: torch.Tensor, last_logits: torch.Tensor) -> None:
    """The lean forward applies the output layer itself: refuse a model whose logits (its own, at the last position)
    are not that layer applied to the decoder's last hidden state, soft-capped where the config says so."""
    softcap = getattr(config, "final_logit_softcapping", None)
    with torch.no_grad():
        ours = head(hidden[:, -1:])
        if softcap is not None:
            ours = torch.tanh(ours / softcap) * softcap
        # loose enough for bf16 rounding, far tighter than any logit scaling or soft-capping a model applies
        if not torch.allclose(ours.float(), last_logits.float(), rtol=1e-2, atol=1e-2):
            raise ConfigError(
                f"compute.lean_orpo_forward: {config.model_type} models' logits are not their output layer applied "
                "to the decoder's last hidden state (they are scaled or post-processed); set "
                "compute.lean_orpo_forward: false for this model"
            )


def _scaled_backward(accelerator, shared_backward, loss, **kwargs) -> None:
    """`Accelerator.backward` as it runs on one device without a loss scaler, the backward itself shared."""
    if accelerator.scaler is not None or kwargs:
        raise ConfigError("packed trials (pack above 1) run without fp16 loss scaling or an optimizer's own backward")
    shared_backward(loss / accelerator.gradient_accumulation_steps)


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


def lora_dropout_probabilities(model) -> set[float]:
    """The p of every LoRA dropout module in a PEFT model (checked by tests: the sweep must really vary it)."""
    return {
        float(module.p)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Dropout) and "lora_dropout" in name
    }


def parse_with_trl_and_peft(config: TrainingConfig) -> tuple[ORPOConfig, LoraConfig]:
    """The `orpo:` section through TRL's own `HfArgumentParser((ORPOConfig,))` (unknown keys refused) and the `lora:`
    section into `peft.LoraConfig`: an exported config means to TRL and PEFT what it meant to the sweep.

    The fields are resolved as for training (`orpo_fields`), so a config exported from a GPU sweep still parses on a
    CPU machine.
    """
    (orpo_config,) = HfArgumentParser((ORPOConfig,)).parse_dict(orpo_fields(config), allow_extra_keys=False)
    return orpo_config, lora_config(config)
