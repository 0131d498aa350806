"""A stored study whose structure is known, for the analysis, report and dashboard tests (no training).

Trials are written with `optuna.create_trial` and curves with `CurveStore`, the way a sweep stores them. The
beta-free loss (nll_loss - log_odds_ratio) is built so that, with u and b the learning rate's and beta's positions
in their log ranges (0..1):

    final training loss   = 4.0 - 2.0 u + 0.3 b
    generalization gap    = 0.1 + 0.6 u - 0.3 b       (rises with the learning rate, falls with beta)
    eval_logp_margin      = 2 x lora_dropout / 0.3     (the maximised objective depends on dropout only)

Dropout, weight decay and the batch sizes leave the losses alone. Every validation curve starts at 4.5 (the
untrained adapter); trials with u >= 0.85, and the hand-made trial RISE_TRIAL, dip below their final validation
loss and rise again.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeper.config import build_training_config, read_yaml_mapping
from sweeper.metrics import CurvePoint
from sweeper.storage import CurveStore, config_hash, library_versions, open_storage

REPO_ROOT = Path(__file__).resolve().parent.parent
EVAL_START = 4.5
LOG_ODDS_RATIO = -0.3
LR_RANGE, BETA_RANGE = (1e-4, 1e-2), (0.01, 1.0)
DISTRIBUTIONS = {
    "learning_rate": FloatDistribution(*LR_RANGE, log=True),
    "per_device_train_batch_size": CategoricalDistribution([4, 8, 16]),
    "gradient_accumulation_steps": CategoricalDistribution([1, 2]),
    "lora_dropout": FloatDistribution(0.0, 0.3),
    "weight_decay": FloatDistribution(0.0, 0.1),
    "beta": FloatDistribution(*BETA_RANGE, log=True),
}
PATHS = {
    "learning_rate": "orpo.learning_rate",
    "per_device_train_batch_size": "orpo.per_device_train_batch_size",
    "gradient_accumulation_steps": "orpo.gradient_accumulation_steps",
    "lora_dropout": "lora.lora_dropout",
    "weight_decay": "orpo.weight_decay",
    "beta": "orpo.beta",
}
N_RANDOM = 36
# Hand-made trials at known points: (u, b, dropout, rise of validation loss after its minimum)
UNDERFIT_TRIAL, BALANCED_TRIAL, OVERFIT_TRIAL, RISE_TRIAL = 0, 1, 2, 3
FIXED = [(0.0, 0.5, 0.1, 0.0), (0.5, 0.8, 0.1, 0.0), (1.0, 0.0, 0.1, 0.3), (0.6, 1.0, 0.1, 0.5)]
PRUNED_REASON = (
    "pruned at rung 0.25 of the schedule (evaluation at step 8): dominated by 6 of 9 trials that reached this rung "
    "(stops at 5)"
)
FAILED_TRIAL, PRUNED_TRIAL = N_RANDOM + len(FIXED), N_RANDOM + len(FIXED) + 1
FAILURE_REASON = "out of memory"


def position(value: float, bounds: tuple[float, float]) -> float:
    return (math.log(value) - math.log(bounds[0])) / (math.log(bounds[1]) - math.log(bounds[0]))


def _value(u: float, bounds: tuple[float, float]) -> float:
    value = math.exp(math.log(bounds[0]) + u * (math.log(bounds[1]) - math.log(bounds[0])))
    return min(max(value, bounds[0]), bounds[1])  # exp(log(x)) can land a rounding error outside the range


def _curves(train_final: float, eval_final: float, rise: float) -> list[CurvePoint]:
    points = []
    for step in range(4, 44, 4):  # training loss decays toward its final value
        value = train_final + (4.4 - train_final) * math.exp(-step / 10) if step < 40 else train_final
        points += [CurvePoint(step, "train", "nll_loss", value + LOG_ODDS_RATIO),
                   CurvePoint(step, "train", "log_odds_ratio", LOG_ODDS_RATIO)]
    lowest = eval_final - rise
    for step in range(0, 48, 8):  # validation falls to `lowest` by step 32, then rises to its final value
        value = EVAL_START + (lowest - EVAL_START) * step / 32 if step <= 32 else lowest + rise * (step - 32) / 8
        points += [CurvePoint(step, "eval", "nll_loss", value + LOG_ODDS_RATIO),
                   CurvePoint(step, "eval", "log_odds_ratio", LOG_ODDS_RATIO)]
    return points


def known_losses(u: float, b: float, rng: np.random.Generator) -> tuple[float, float]:
    """(final training loss, generalization gap) of the module's planted structure."""
    train_final = 4.0 - 2.0 * u + 0.3 * b + rng.normal(0, 0.01)
    gap = 0.1 + 0.6 * u - 0.3 * b + rng.normal(0, 0.01)
    return train_final, gap


def build_known_study(
    storage_url: str,
    study_name: str,
    seed: int = 3,
    losses=known_losses,
    gap_from_batch=None,
    n_random: int = N_RANDOM,
    bulk: tuple[dict, list[CurvePoint]] | None = None,
) -> optuna.Study:
    """Create the study in `storage_url` (a file URL) and return it. `losses(u, b, rng)` plants the final training
    loss and the gap from the learning rate's and beta's positions; `gap_from_batch(effective_batch_size)`, if
    given, is added to the gap. `bulk` (a real trial's user attributes and curve points) is stored with every
    completed trial under its planted ones, which win: a study of a real trial's size with the known structure."""
    bulk_attrs, bulk_points = bulk or ({}, [])
    rng = np.random.default_rng(seed)
    # sweeper's own storage: its SQLite connections commit in write-ahead-log mode, as a sweep's do (much faster
    # than Optuna's default engine for the few hundred commits a study's trials take)
    storage = open_storage(storage_url, heartbeat_interval_s=None)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=["minimize", "maximize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["eval_nll_loss", "eval_logp_margin"])
    base = read_yaml_mapping(REPO_ROOT / "configs" / "tiny.yaml")
    versions = library_versions()
    shapes = [
        (rng.uniform(), rng.uniform(), rng.uniform(0, 0.3), None) for _ in range(n_random)
    ]
    rows = FIXED + shapes
    with CurveStore(storage_url, engine=storage.engine) as curves:
        for number, (u, b, dropout, rise) in enumerate(rows):
            params = {
                "learning_rate": _value(u, LR_RANGE),
                "per_device_train_batch_size": int(rng.choice([4, 8, 16])),
                "gradient_accumulation_steps": int(rng.choice([1, 2])),
                "lora_dropout": float(dropout),
                "weight_decay": float(rng.uniform(0, 0.1)),
                "beta": _value(b, BETA_RANGE),
            }
            rise = (0.3 if u >= 0.85 else 0.0) if rise is None else rise
            train_final, gap = losses(u, b, rng)
            if gap_from_batch is not None:
                gap += gap_from_batch(params["per_device_train_batch_size"] * params["gradient_accumulation_steps"])
            eval_final = train_final + gap
            margin = 2 * dropout / 0.3 + rng.normal(0, 0.01)
            config = build_training_config(base, {PATHS[k]: v for k, v in params.items()}, source="known study")
            config_values = config.model_dump(mode="json")
            attrs = {
                "train_nll_loss": train_final + LOG_ODDS_RATIO,
                "train_log_odds_ratio": LOG_ODDS_RATIO,
                "eval_nll_loss": eval_final + LOG_ODDS_RATIO,
                "eval_log_odds_ratio": LOG_ODDS_RATIO,
                "effective_batch_size": params["per_device_train_batch_size"] * params["gradient_accumulation_steps"],
                "runtime_s": 1.0,
                "planned_steps": 40,  # the curves' last step, as a sweep stores it
                "training_config": config_values,
                "config_hash": config_hash(config_values),
                "library_versions": versions,
            }
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=DISTRIBUTIONS, values=[eval_final + LOG_ODDS_RATIO, margin],
                    user_attrs={**bulk_attrs, **attrs},
                )
            )
            planted = _curves(train_final, eval_final, rise)
            series = {(point.split, point.metric) for point in planted}
            extra = [point for point in bulk_points if (point.split, point.metric) not in series]
            curves.write(study_name, number, planted + extra)
        params = {"learning_rate": 1e-3, "per_device_train_batch_size": 16, "gradient_accumulation_steps": 2,
                  "lora_dropout": 0.1, "weight_decay": 0.0, "beta": 0.1}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=DISTRIBUTIONS, state=optuna.trial.TrialState.FAIL,
                user_attrs={"failure_reason": FAILURE_REASON, "failure_detail": "CUDA out of memory at micro-batch 16"},
            )
        )
        study.add_trial(
            optuna.trial.create_trial(
                # as sweeper's pruners store it: a multi-objective study takes no intermediate values
                params=params, distributions=DISTRIBUTIONS, state=optuna.trial.TrialState.PRUNED,
                user_attrs={"pruned_reason": PRUNED_REASON, "pruned_at_step": 8, "planned_steps": 32},
            )
        )
    return study


def write_study_file(path: Path, study_name: str, storage_url: str) -> Path:
    """A study file naming the stored study, for the commands that take one (analyze, report, dashboard...)."""
    path.write_text(
        f"study_name: {study_name}\nbase_config: {REPO_ROOT / 'configs' / 'tiny.yaml'}\n"
        "space: {orpo.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}}\n"
        "objectives: [{name: eval_nll_loss}, {name: eval_logp_margin}]\n"
        f"n_trials: 4\nstorage: {storage_url}\n"
    )
    return path
