"""Short column labels for terminal tables: an 80-column terminal has room for about ten columns of 6 characters,
not for `per_device_train_batch_size`. A table that uses them prints `label_legend` once below it."""

from __future__ import annotations

from collections.abc import Iterable

SHORT_LABELS = {
    # hyperparameters (Optuna parameter names are the config field names)
    "learning_rate": "lr",
    "per_device_train_batch_size": "batch",
    "gradient_accumulation_steps": "accum",
    "effective_batch_size": "eff.batch",
    "lora_dropout": "dropout",
    "weight_decay": "wd",
    "num_train_epochs": "epochs",
    "warmup_ratio": "warmup",
    "lora_alpha": "alpha",
    # objectives and analysis targets
    "eval_nll_loss": "val NLL",
    "eval_logp_margin": "val margin",
    "eval_loss": "val loss",
    "eval_rewards/margins": "val rew.margin",
    "eval_rewards/accuracies": "val rew.acc",
    "generalization_gap": "gap",
    "train_loss": "train loss",
}


def short_label(name: str) -> str:
    return SHORT_LABELS.get(name, name)


def label_legend(names: Iterable[str]) -> str:
    """`lr = learning_rate, ...` for the names that `short_label` shortens, in first-seen order; "" if none."""
    pairs = [f"{short_label(name)} = {name}" for name in dict.fromkeys(names) if short_label(name) != name]
    return ", ".join(pairs)
