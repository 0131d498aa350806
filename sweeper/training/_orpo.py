"""One trial's training, top to bottom: the pairs and the base model (reused between a worker's trials), fresh LoRA
adapters, TRL's ORPOTrainer (built in `_trl.py`, the one module that imports TRL and PEFT), and every metric TRL logs,
train and eval, as final values and per-step curves.

What it fixes of TRL's defaults that would silently spoil a sweep:
- `disable_dropout` is off, or the LoRA dropout being swept would be zeroed; the base model's own dropouts are
  still zeroed, so only the adapter's dropout varies between trials.
- bf16 only where the device supports it; SDPA attention unless the config names another kernel;
  gradient checkpointing only when the config asks for it (or `run_trial`'s out-of-memory retry turns it on).
- NaN/inf losses are never filtered or averaged away: any non-finite loss fails the trial.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

from transformers import PrinterCallback, TrainerCallback, set_seed

from ..config import TrainingConfig
from ..metrics import EVAL, ORPO_METRICS, CurvePoint, TrialResult, curve_points, split_of_log
from ._models import base_model_key, load_base_model
from ._pack import TrainingPack
from ._pairs import pairs_key, prepare_pairs, tokenized_key
from ._reuse import TrialReuse
from ._trl import NonFiniteLossError, _CheckedORPOTrainer, attach_lora, orpo_arguments


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


@contextmanager
def _solo_adapters(base, config: TrainingConfig, reuse: TrialReuse | None):
    """Fresh adapters on `base` for one trial; with `reuse`, the base model handed back clean afterwards."""
    model = None
    try:
        set_seed(config.seed)  # LoRA initialisation is random: seed it before the adapters exist
        model = attach_lora(base, config)
        yield model
    finally:
        if reuse is not None and reuse.holds(base):
            if model is not None:
                model.unload()  # the adapters leave; the base modules PEFT wrapped are put back in place
            reuse.return_base_model(base)  # checked: anything left behind and the next trial loads afresh


def _check_finite(values: dict[str, float], where: str) -> None:
    watched = {key for key in values if key.removeprefix("eval_") in ORPO_METRICS}
    if any(not math.isfinite(values[key]) for key in watched):
        raise NonFiniteLossError(where)


def run_orpo(
    config: TrainingConfig,
    output_dir: str | Path,
    callbacks: list[TrainerCallback] | None = None,
    reuse: TrialReuse | None = None,
    pack: TrainingPack | None = None,
) -> TrialResult:
    """Train one ORPO + LoRA run and return its final metrics and curves. Raises NonFiniteLossError.

    With `reuse` (one per worker, see `_reuse.py`), the base model, the text pairs and the tokenized datasets come
    from earlier trials where their keys match, and the base model is handed back clean after the trial.
    With `pack` (see `_pack.py`), the trial trains on the pack's base model together with the pack's other trials;
    it then holds the pack's turn throughout, handing it on only while it waits for the pack's forward or backward.
    """
    started = time.perf_counter()
    with pack.turn() if pack is not None else nullcontext():
        if reuse is None:
            pairs = prepare_pairs(config)
            tokenized = None
        else:
            pairs = reuse.pairs(pairs_key(config), lambda: prepare_pairs(config))
        if pack is not None:
            base = pack.base_model
        elif reuse is None:
            base = load_base_model(config)
        else:
            base = reuse.base_model(base_model_key(config), lambda: load_base_model(config))
        if reuse is not None:
            data_key = tokenized_key(pairs, config, base)
            tokenized = reuse.tokenized(data_key)

        with pack.member(config) if pack is not None else _solo_adapters(base, config, reuse) as model:
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
                shared_backward=partial(pack.backward, model.pack_name) if pack is not None else None,
            )
            if reuse is not None and tokenized is None:
                reuse.store_tokenized(data_key, trainer.train_dataset, trainer.eval_dataset)
            trainer.remove_callback(PrinterCallback)  # curves are returned, not printed
            train_output = trainer.train()
            _check_finite(recorder.last_train, "training")
            every = config.orpo.eval_steps
            final_eval = trainer.evaluate() if trainer.state.global_step % every else recorder.last_eval
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
        dropped_long_prompts=pairs.dropped_train + pairs.dropped_eval,
        train_rows=len(pairs.train),
        eval_rows=len(pairs.validation),
        micro_batch_size=config.orpo.per_device_train_batch_size,
        gradient_accumulation_steps=config.orpo.gradient_accumulation_steps,
        dataset_fingerprint=pairs.data_fingerprint,
        bf16=bool(trainer.args.bf16),
        notes=list(pairs.warnings),
    )


