"""The claims verdict rule on hand-made effects: signs, mixed evidence, seed noise, parameters not varied."""

from __future__ import annotations

from sweeper.analysis import CONTRADICTED, GAP, INCONCLUSIVE, SUPPORTED, TRAIN_LOSS, Correlation
from sweeper.analysis._claims import judge_claims


def _effect(parameter: str, target: str, low: float, high: float, high_minus_low: float = 0.0) -> Correlation:
    rho = (low + high) / 2
    return Correlation(parameter, target, rho, low, high, 20, "-", "-", high_minus_low, None)


def _verdicts(effects, varied, gap_seed_sd=None):
    claims = judge_claims({(e.parameter, e.target): e for e in effects}, varied, gap_seed_sd)
    return {claim.hyperparameter: claim for claim in claims}


def test_signs_decide_the_verdict():
    effects = [
        _effect("learning_rate", GAP, 0.2, 0.8, 0.1),  # predicted: larger gap -> for
        _effect("learning_rate", TRAIN_LOSS, -0.3, 0.3),  # CI holds 0 -> neither
        _effect("lora_dropout", GAP, 0.1, 0.6, 0.1),  # predicted: smaller gap -> against
        _effect("weight_decay", GAP, -0.7, -0.1, -0.1),  # for
        _effect("weight_decay", TRAIN_LOSS, -0.8, -0.2),  # predicted: higher training loss -> against
    ]
    verdicts = _verdicts(effects, {"learning_rate", "lora_dropout", "weight_decay"})
    assert verdicts["learning rate"].verdict == SUPPORTED
    assert verdicts["LoRA dropout"].verdict == CONTRADICTED
    assert verdicts["weight decay"].verdict == INCONCLUSIVE and "opposite ways" in verdicts["weight decay"].reason
    assert verdicts["beta"].verdict == INCONCLUSIVE and verdicts["beta"].parameter is None
    assert "not varied" in verdicts["beta"].reason


def test_a_gap_effect_within_seed_noise_does_not_count():
    effects = [_effect("learning_rate", GAP, 0.2, 0.8, high_minus_low=0.05)]
    noisy = _verdicts(effects, {"learning_rate"}, gap_seed_sd=0.04)["learning rate"]
    assert noisy.verdict == INCONCLUSIVE and "within 2 x the seed SD" in noisy.reason and noisy.gap_seed_sd == 0.04
    quiet = _verdicts(effects, {"learning_rate"}, gap_seed_sd=0.01)["learning rate"]
    assert quiet.verdict == SUPPORTED


def test_batch_size_claim_reads_the_effective_batch_size():
    effects = [_effect("effective_batch_size", GAP, -0.9, -0.4, -0.2)]  # larger batch, smaller gap: as claimed
    verdict = _verdicts(effects, {"effective_batch_size", "per_device_train_batch_size"})["batch size"]
    assert verdict.parameter == "effective_batch_size" and verdict.verdict == SUPPORTED
