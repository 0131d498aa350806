"""What the analysis returns: plain dataclasses, JSON-ready through `StudyAnalysis.to_dict()`.

The report, the export and `sweeper analyze --json` read only these; nothing here holds an Optuna object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ._interactions import PairInteraction
from ._shapes import EffectShape

# The beta-free loss the fit rows compare: ORPO's loss scored at beta = 1 (nll_loss - log_odds_ratio). TRL's own
# `loss` is nll_loss - beta * log_odds_ratio and so grows with beta by construction; this form does not.
LOSS_FORM = "loss_unit_beta"
GAP = "generalization_gap"
TRAIN_LOSS = "train_loss"
EVAL_LOSS = "eval_loss"
EFFECTIVE_BATCH_SIZE = "effective_batch_size"

UNDERFIT, BALANCED, OVERFIT = "underfit", "balanced", "overfit"
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"


@dataclass(frozen=True)
class FitRule:
    """Thresholds of the fit label (docs/analysis.md explains the rule). Losses are `LOSS_FORM`.

    overfit:  the validation loss ends `overfit_gap_ratio` or more above the training loss (relative to the final
              validation loss), or it rose after its minimum by `overfit_rise_ratio` or more of the improvement it
              had made up to that minimum;
    underfit: otherwise, when its validation improvement from the untrained start is below
              `underfit_improvement_ratio` of the best improvement in the study;
    balanced: everything else.
    """

    overfit_gap_ratio: float = 0.10
    overfit_rise_ratio: float = 0.10
    underfit_improvement_ratio: float = 0.50


@dataclass
class TrialFit:
    """One completed trial's fit: final losses (beta-free), the gap, the validation curve's minimum and rise."""

    train_loss: float | None  # LOSS_FORM, last logged training step (an average over that logging window)
    eval_loss: float | None  # LOSS_FORM, final evaluation
    train_nll_loss: float | None
    eval_nll_loss: float | None
    generalization_gap: float | None  # eval_loss - train_loss
    gap_ratio: float | None  # generalization_gap / eval_loss
    eval_start_loss: float | None  # first evaluation (step 0: the untrained adapter)
    eval_min_loss: float | None
    eval_min_step: int | None
    eval_rise_after_min: float | None  # final - minimum, >= 0
    rise_ratio: float | None  # eval_rise_after_min / (eval_start_loss - eval_min_loss)
    improvement_ratio: float | None  # this trial's (start - final) / the study's best (start - final)
    label: str | None  # UNDERFIT / BALANCED / OVERFIT, None when the losses are missing
    reason: str  # which clause of the rule decided the label


@dataclass
class ObjectiveInfo:
    name: str
    direction: str  # "minimize" / "maximize"


@dataclass
class ParameterInfo:
    name: str  # Optuna's parameter name
    log_scale: bool
    categorical: bool
    numeric: bool


@dataclass
class TrialRow:
    """Every trial of the study, whatever its state; `fit` only for completed trials."""

    number: int
    state: str
    values: dict[str, float] | None  # objective name -> value
    params: dict[str, Any]
    beta: float | None
    effective_batch_size: int | None
    seed: int | None
    pareto: bool
    fit: TrialFit | None
    failure_reason: str | None
    failure_detail: str | None
    pruned_step: int | None  # the optimizer step a pruned trial stopped at
    runtime_s: float | None
    config_hash: str | None
    training_config: dict[str, Any] | None
    library_versions: dict[str, str] | None
    dataset_fingerprint: str | None
    pruned_reason: str | None = None  # why the pruner stopped it, as stored (e.g. "pruned at rung 0.25 ...")
    train_rows: int | None = None  # pairs the trial trained and validated on, after drops and caps
    eval_rows: int | None = None
    bf16: bool | None = None  # the precision it trained in (None: stored before sweeper recorded it)


@dataclass
class CurveSeries:
    """One learning curve of a Pareto trial, in `LOSS_FORM`."""

    trial_number: int
    split: str  # "train" / "eval"
    steps: list[int]
    values: list[float]


@dataclass
class HypervolumeHistory:
    """Hypervolume of the Pareto front of trials 0..k, per completed trial, against `reference_point`."""

    reference_point: list[float]  # in the objectives' own directions
    trial_numbers: list[int]
    values: list[float]


@dataclass
class Importance:
    """Importance of each parameter for one target by one of Optuna's evaluators (normalised to sum 1)."""

    target: str
    evaluator: str
    # PED-ANOVA asks what sets the best trials apart, so a maximised target is negated before it sees it.
    negated_for_maximize: bool
    values: dict[str, float]
    n_trials: int
    error: str | None = None


@dataclass
class Correlation:
    """Spearman's rank correlation of a parameter with a target over completed trials, with a bootstrap CI."""

    parameter: str
    target: str
    rho: float | None
    ci_low: float | None
    ci_high: float | None
    n_trials: int
    direction: str  # "increases" / "decreases" / "unclear": the CI excludes 0 or it does not
    strength: str  # "weak" / "moderate" / "strong" by |rho|, or "-"
    # Difference of the target between the top and bottom third of the parameter's values, beside the seed noise.
    high_minus_low: float | None
    seed_sd: float | None


@dataclass
class SideVerdict:
    """A claim judged on the trials below or above an interior optimum of its parameter."""

    side: str  # "below" / "above"
    split: float  # the optimum's location (parameter units)
    n_trials: int
    verdict: str
    reason: str  # the gap's rho with its CI, then what decided the verdict


@dataclass
class ClaimVerdict:
    """One bias-variance claim of the practitioner's notes beside what the study measured."""

    hyperparameter: str
    parameter: str | None  # the study's parameter tested, None when it was not varied
    claim_high: str
    claim_low: str
    prediction: str
    gap_rho: float | None
    gap_ci: list[float] | None
    train_loss_rho: float | None
    train_loss_ci: list[float] | None
    gap_high_minus_low: float | None
    gap_seed_sd: float | None
    verdict: str
    reason: str
    sides: list[SideVerdict] = field(default_factory=list)  # where the gap or training loss has an interior optimum


@dataclass
class ReplicateGroup:
    """A source trial and its re-runs with other seeds; per-metric mean and sample SD over all of them."""

    source_trial: int
    seeds: list[int]
    trial_numbers: list[int]  # the replicates' numbers in the companion study
    mean: dict[str, float]
    sd: dict[str, float]


@dataclass
class SeedSpread:
    """The noise floor: how much a metric moves when only the seed changes (pooled over replicate groups)."""

    replicates_study: str
    groups: list[ReplicateGroup]
    pooled_sd: dict[str, float | None]  # metric -> pooled SD, None without replicates
    n_runs: int


@dataclass
class Advice:
    trial: int
    label: str  # OVERFIT / UNDERFIT: what the move addresses
    target: str  # GAP for overfit, TRAIN_LOSS for underfit
    parameter: str | None  # None: no move has a clear predicted improvement
    current: float | None
    suggested: float | None
    change: float | None  # predicted change of `target` (negative = better)
    change_low: float | None  # 90% interval
    change_high: float | None
    objectives: dict[str, list[float]] = field(default_factory=dict)  # objective -> [mean, low, high] change
    notes_agree: bool | None = None  # the practitioner's notes point the same way; None: they say nothing of it
    text: str = ""


@dataclass
class StudyAnalysis:
    study_name: str
    storage: str  # password redacted
    objectives: list[ObjectiveInfo]
    parameters: list[ParameterInfo]
    fit_rule: FitRule
    loss_form: str
    trials: list[TrialRow]
    pareto_numbers: list[int]
    hypervolume: HypervolumeHistory | None
    pareto_curves: list[CurveSeries]
    importances: list[Importance]
    correlations: list[Correlation]
    claims: list[ClaimVerdict]
    seed_spread: SeedSpread
    notes: list[str] = field(default_factory=list)
    effects: list[EffectShape] = field(default_factory=list)  # partial dependence and shape per parameter x target
    interactions: list[PairInteraction] = field(default_factory=list)  # parameter pairs per target, strongest first
    advice: list[Advice] = field(default_factory=list)  # per overfit / underfit trial: the move predicted to help

    @property
    def completed(self) -> list[TrialRow]:
        return [trial for trial in self.trials if trial.state == "COMPLETE"]

    @property
    def pareto_trials(self) -> list[TrialRow]:
        by_number = {trial.number: trial for trial in self.trials}
        return [by_number[number] for number in self.pareto_numbers]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN and infinities become None (JSON has neither)."""
        return _json_safe(asdict(self))


def pareto_then_latest(trials: Sequence[TrialRow], limit: int) -> list[TrialRow]:
    """At most `limit` trials, in trial order: the Pareto ones first, then the latest. How a large study's advice,
    parallel coordinates and fit table choose the trials they show."""
    kept = sorted(trials, key=lambda trial: (not trial.pareto, -trial.number))[:limit]
    return sorted(kept, key=lambda trial: trial.number)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
