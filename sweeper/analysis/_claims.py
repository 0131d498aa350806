"""The seed notes' bias-variance claims (../shared/seed-summary.md) beside what the study measured.

Each claim predicts a sign. "High value overfits" (low bias, high variance) predicts that raising the parameter
widens the generalization gap and lowers the training loss; "high value underfits" predicts the opposite.

Verdict, per claim (docs/analysis.md):
- each of the two measured effects (Spearman rho of the parameter with the gap and with the training loss) is
  evidence *for* when its 95% bootstrap CI excludes 0 on the predicted side, *against* when on the other side;
- supported: at least one for, none against; contradicted: at least one against, none for; else inconclusive;
- with replicates, an effect on the gap smaller than twice the seed-to-seed SD of the gap (top third minus bottom
  third of the parameter) is noise: a verdict resting on the gap alone becomes inconclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._data import (
    CONTRADICTED,
    EFFECTIVE_BATCH_SIZE,
    GAP,
    INCONCLUSIVE,
    SUPPORTED,
    TRAIN_LOSS,
    ClaimVerdict,
    Correlation,
    SideVerdict,
)

SEED_NOISE_FACTOR = 2.0


@dataclass(frozen=True)
class Claim:
    hyperparameter: str
    parameter_names: tuple[str, ...]  # the study parameter (or derived column) that carries it, first found wins
    claim_high: str
    claim_low: str
    high_overfits: bool  # True: higher value -> larger gap, lower training loss

    @property
    def prediction(self) -> str:
        if self.high_overfits:
            return "higher -> larger gap (rho > 0), lower training loss (rho < 0)"
        return "higher -> smaller gap (rho < 0), higher training loss (rho > 0)"


OVERFITS = "low bias, high variance (overfits)"
UNDERFITS = "high bias, low variance (underfits)"
CLAIMS = (
    Claim("learning rate", ("learning_rate", "orpo.learning_rate"), OVERFITS, UNDERFITS, True),
    # Gradient accumulation "stands in for a larger batch": the claim is about the effective batch.
    Claim("batch size", (EFFECTIVE_BATCH_SIZE,), f"{UNDERFITS} when large", f"{OVERFITS} when small", False),
    Claim("LoRA dropout", ("lora_dropout", "lora.lora_dropout"), UNDERFITS, OVERFITS, False),
    Claim("weight decay", ("weight_decay", "orpo.weight_decay"), UNDERFITS, OVERFITS, False),
    Claim("beta", ("beta", "orpo.beta"), OVERFITS, UNDERFITS, True),
)


def _evidence(correlation: Correlation | None, predicted_sign: int) -> int:
    """+1 for, -1 against, 0 neither (no CI, or the CI holds 0)."""
    if correlation is None or correlation.ci_low is None or correlation.ci_high is None:
        return 0
    if correlation.ci_low > 0:
        return 1 if predicted_sign > 0 else -1
    if correlation.ci_high < 0:
        return 1 if predicted_sign < 0 else -1
    return 0


def _ci(correlation: Correlation | None) -> list[float] | None:
    if correlation is None or correlation.ci_low is None:
        return None
    return [correlation.ci_low, correlation.ci_high]


def judge_claims(
    correlations: Mapping[tuple[str, str], Correlation], varied: set[str], gap_seed_sd: float | None
) -> list[ClaimVerdict]:
    """`correlations` keyed by (parameter, target); `varied` = parameters that take two or more values."""
    verdicts = []
    for claim in CLAIMS:
        parameter = next((name for name in claim.parameter_names if name in varied), None)
        if parameter is None:
            verdicts.append(
                ClaimVerdict(claim.hyperparameter, None, claim.claim_high, claim.claim_low, claim.prediction,
                             None, None, None, None, None, gap_seed_sd, INCONCLUSIVE,
                             "not varied in this study: add it to the study file's space to test the claim")
            )
            continue
        on_gap, on_train = correlations.get((parameter, GAP)), correlations.get((parameter, TRAIN_LOSS))
        verdict, reason, effect = _judge(claim, on_gap, on_train, gap_seed_sd)
        verdicts.append(
            ClaimVerdict(
                hyperparameter=claim.hyperparameter,
                parameter=parameter,
                claim_high=claim.claim_high,
                claim_low=claim.claim_low,
                prediction=claim.prediction,
                gap_rho=on_gap.rho if on_gap else None,
                gap_ci=_ci(on_gap),
                train_loss_rho=on_train.rho if on_train else None,
                train_loss_ci=_ci(on_train),
                gap_high_minus_low=effect,
                gap_seed_sd=gap_seed_sd,
                verdict=verdict,
                reason=reason,
            )
        )
    return verdicts


def _judge(
    claim: Claim, on_gap: Correlation | None, on_train: Correlation | None, gap_seed_sd: float | None
) -> tuple[str, str, float | None]:
    """(verdict, reason, gap effect top - bottom third) from the two measured effects, as the module says."""
    gap_sign = 1 if claim.high_overfits else -1
    gap_evidence, train_evidence = _evidence(on_gap, gap_sign), _evidence(on_train, -gap_sign)
    effect = on_gap.high_minus_low if on_gap else None
    notes = []
    within_noise = gap_seed_sd is not None and effect is not None and abs(effect) < SEED_NOISE_FACTOR * gap_seed_sd
    if within_noise and gap_evidence:
        notes.append(
            f"the gap moves {effect:+.3g} from the bottom to the top third, within {SEED_NOISE_FACTOR:g} x the "
            f"seed SD ({gap_seed_sd:.3g}): not counted"
        )
        gap_evidence = 0
    evidence = (gap_evidence, train_evidence)
    if 1 in evidence and -1 not in evidence:
        verdict = SUPPORTED
    elif -1 in evidence and 1 not in evidence:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    words = {1: "agrees", -1: "disagrees", 0: "CI includes 0"}
    notes.insert(0, f"gap: {words[gap_evidence]}; training loss: {words[train_evidence]}")
    if 1 in evidence and -1 in evidence:
        notes.append("the two effects point opposite ways")
    return verdict, "; ".join(notes), effect


def judge_side(
    claim_name: str,
    side: str,
    split: float,
    on_gap: Correlation | None,
    on_train: Correlation | None,
    gap_seed_sd: float | None,
) -> SideVerdict:
    """A claim judged on the trials on one side (`below` / `above`) of an interior optimum at `split`: the claim
    speaks of "high" and "low" values, and across an optimum the whole-range correlation cancels out."""
    claim = next(c for c in CLAIMS if c.hyperparameter == claim_name)
    verdict, reason, _ = _judge(claim, on_gap, on_train, gap_seed_sd)
    rho = f"gap rho {on_gap.rho:+.2f} [{on_gap.ci_low:+.2f}, {on_gap.ci_high:+.2f}]" if on_gap and on_gap.ci_low is not None else "gap rho -"
    n_trials = max(on_gap.n_trials if on_gap else 0, on_train.n_trials if on_train else 0)
    return SideVerdict(side, split, n_trials, verdict, f"{rho}; {reason}")
