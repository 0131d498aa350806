"""What one trial produces: final ORPO metrics and their curves. Light on purpose: storage and analysis import it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

# Stored failure reasons (user attribute `failure_reason`) that the sweep counts and reports by name
OUT_OF_MEMORY = "out of memory"
NON_FINITE_LOSS = "non-finite loss"
INTERRUPTED = "interrupted"

# TRL's ORPOTrainer names, logged per step for training and with an `eval_` prefix for validation.
ORPO_METRICS = (
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "logits/chosen",
    "logits/rejected",
    "nll_loss",
    "log_odds_ratio",
    "log_odds_chosen",
)
# The trainer's own throughput figures, reported once per train run and per evaluation.
RUNTIME_METRICS = ("runtime", "samples_per_second", "steps_per_second")

TRAIN, EVAL = "train", "eval"
# Logged keys that are bookkeeping, not curves.
NOT_CURVES = {"epoch", "total_flos", "train_loss"}


@dataclass(frozen=True)
class CurvePoint:
    step: int
    split: str  # "train" or "eval"
    metric: str  # TRL's name without the `eval_` prefix, e.g. "rewards/margins"
    value: float


@dataclass
class TrialResult:
    """Final metrics (TRL's names: `loss`, `eval_loss`, `train_runtime`, ...) and every logged curve point."""

    train_metrics: dict[str, float]
    eval_metrics: dict[str, float]
    curves: list[CurvePoint]
    runtime_s: float
    effective_batch_size: int
    global_steps: int
    dropped_long_prompts: int = 0
    train_rows: int = 0
    eval_rows: int = 0
    micro_batch_size: int = 0
    gradient_accumulation_steps: int = 0
    dataset_fingerprint: str = ""  # of the rows as loaded: the same data gives the same fingerprint
    bf16: bool | None = None  # the precision the trial trained in, once `bf16: auto` met the device
    notes: list[str] = field(default_factory=list)

    def curve(self, metric: str, split: str = EVAL) -> list[tuple[int, float]]:
        return [(p.step, p.value) for p in self.curves if p.metric == metric and p.split == split]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrialResult":
        data = dict(data)
        data["curves"] = [CurvePoint(**point) for point in data["curves"]]
        return cls(**data)


def split_of_log(logs: dict[str, float]) -> str:
    """A trainer log is an evaluation's when its keys carry the `eval_` prefix."""
    return EVAL if any(key.startswith("eval_") for key in logs) else TRAIN


def curve_points(step: int, logs: dict[str, float]) -> list[CurvePoint]:
    """The curve points of one trainer log (what `TrainerCallback.on_log` receives) at optimizer step `step`."""
    split = split_of_log(logs)
    return [
        CurvePoint(step, split, key.removeprefix("eval_") if split == EVAL else key, float(value))
        for key, value in logs.items()
        if key not in NOT_CURVES and isinstance(value, (int, float))
    ]


def non_finite(values: dict[str, float]) -> list[str]:
    """Names whose value is NaN or infinite."""
    return sorted(name for name, value in values.items() if isinstance(value, float) and not math.isfinite(value))
