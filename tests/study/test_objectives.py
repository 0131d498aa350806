"""Objectives from TRL's ORPO metrics; the defaults must not move when only beta's scaling of rewards moves."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sweeper.study import OBJECTIVES, MissingMetricError, StudySpec, beta_scaled_warnings, get_objective

# Beta-free quantities of one evaluation: avg-token log-probs, NLL and mean logsigmoid(log odds).
LOGP_CHOSEN, LOGP_REJECTED, NLL, LOG_ODDS_RATIO, ACCURACY = -0.8, -1.7, 0.9, -0.35, 0.75
DEFAULT_OBJECTIVES = ("eval_nll_loss", "eval_logp_margin")


def orpo_eval_metrics(beta: float) -> dict[str, float]:
    """What TRL 1.16's ORPOTrainer logs for these quantities at this beta."""
    return {
        "eval_loss": NLL - beta * LOG_ODDS_RATIO,
        "eval_nll_loss": NLL,
        "eval_log_odds_ratio": LOG_ODDS_RATIO,
        "eval_log_odds_chosen": 1.2,
        "eval_rewards/chosen": beta * LOGP_CHOSEN,
        "eval_rewards/rejected": beta * LOGP_REJECTED,
        "eval_rewards/margins": beta * (LOGP_CHOSEN - LOGP_REJECTED),
        "eval_rewards/accuracies": ACCURACY,
        "eval_logps/chosen": LOGP_CHOSEN,
        "eval_logps/rejected": LOGP_REJECTED,
    }


TRAIN = {"loss": 1.0, "nll_loss": 0.6}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("eval_nll_loss", NLL),
        ("eval_logp_margin", LOGP_CHOSEN - LOGP_REJECTED),
        ("eval_odds_ratio_loss", -LOG_ODDS_RATIO),
        ("eval_loss_unit_beta", NLL - LOG_ODDS_RATIO),
        ("eval_reward_accuracy", ACCURACY),
        ("train_nll_loss", 0.6),
        ("eval_loss", NLL - 0.2 * LOG_ODDS_RATIO),
        ("eval_reward_margin", 0.2 * (LOGP_CHOSEN - LOGP_REJECTED)),
    ],
)
def test_each_objective_computes_its_formula(name, expected):
    assert get_objective(name).compute(orpo_eval_metrics(0.2), TRAIN, beta=0.2) == pytest.approx(expected)


def test_logp_margin_is_the_reward_margin_divided_by_beta():
    metrics = orpo_eval_metrics(0.3)
    assert OBJECTIVES["eval_logp_margin"].compute(metrics, TRAIN, 0.3) == pytest.approx(
        metrics["eval_rewards/margins"] / 0.3
    )


def test_default_objectives_do_not_change_when_only_beta_scaling_changes():
    low, high = orpo_eval_metrics(0.05), orpo_eval_metrics(0.7)
    for name in DEFAULT_OBJECTIVES:
        assert OBJECTIVES[name].compute(low, TRAIN, 0.05) == OBJECTIVES[name].compute(high, TRAIN, 0.7)
    for objective in OBJECTIVES.values():
        moved = not math.isclose(objective.compute(low, TRAIN, 0.05), objective.compute(high, TRAIN, 0.7))
        assert moved == objective.beta_scaled, objective.name


def test_shipped_default_study_optimises_beta_free_objectives():
    shipped = Path(__file__).parents[2] / "studies" / "default.yaml"
    text = shipped.read_text(encoding="utf-8")
    for name in DEFAULT_OBJECTIVES:
        assert f"name: {name}" in text
    assert not any(OBJECTIVES[name].beta_scaled for name in DEFAULT_OBJECTIVES)


def test_registry_entries_are_complete():
    required = {"eval_nll_loss", "eval_logp_margin", "eval_odds_ratio_loss", "eval_loss_unit_beta"}
    required |= {"eval_reward_accuracy", "train_nll_loss", "eval_loss", "eval_reward_margin"}
    assert required <= set(OBJECTIVES)
    for name, objective in OBJECTIVES.items():
        assert objective.name == name and objective.direction in ("minimize", "maximize") and objective.description
        assert bool(objective.beta_note) == objective.beta_scaled


def test_a_missing_metric_names_the_metric_and_the_objective():
    metrics = orpo_eval_metrics(0.1)
    del metrics["eval_logps/rejected"]
    with pytest.raises(KeyError) as caught:
        OBJECTIVES["eval_logp_margin"].compute(metrics, TRAIN, 0.1)
    assert isinstance(caught.value, MissingMetricError)
    assert "eval_logps/rejected" in str(caught.value) and "eval_logp_margin" in str(caught.value)
    with pytest.raises(MissingMetricError, match="train_nll_loss.*'nll_loss'"):
        OBJECTIVES["train_nll_loss"].compute(metrics, {"loss": 1.0}, 0.1)


def test_unknown_objective_lists_the_known_ones():
    with pytest.raises(KeyError, match="eval_nll_loss"):
        get_objective("eval_accuracy")


def spec_with(objectives: list[str], beta) -> StudySpec:
    return StudySpec(
        study_name="warnings",
        base_config=Path(__file__).parents[2] / "configs" / "tiny.yaml",
        space={"orpo.learning_rate": {"log_uniform": [1e-4, 1e-2]}, "orpo.beta": beta},
        objectives=[{"name": name} for name in objectives],
        n_trials=1,
    )


@pytest.fixture
def tiny_config_exists():
    if not (Path(__file__).parents[2] / "configs" / "tiny.yaml").is_file():
        pytest.skip("configs/tiny.yaml is not written yet")


def test_beta_scaled_objectives_warn_when_beta_is_searched(tiny_config_exists):
    spec = spec_with(["eval_loss", "eval_nll_loss", "eval_reward_margin"], {"log_uniform": [0.01, 1.0]})
    warnings = beta_scaled_warnings(spec)
    assert len(warnings) == 2
    assert "eval_loss" in warnings[0] and "eval_loss_unit_beta" in warnings[0] and "by construction" in warnings[0]
    assert "eval_reward_margin" in warnings[1] and "eval_logp_margin" in warnings[1]


def test_no_warning_when_beta_is_fixed_or_objectives_are_beta_free(tiny_config_exists):
    assert beta_scaled_warnings(spec_with(["eval_loss", "eval_reward_margin"], 0.1)) == []
    assert beta_scaled_warnings(spec_with(list(DEFAULT_OBJECTIVES), {"log_uniform": [0.01, 1.0]})) == []


def test_the_metrics_an_objective_reads_are_named_as_the_curves_table_names_them(tiny_config_exists):
    # what a pruning decision selects from its peers' curves (sweep/_intermediate.py)
    spec = spec_with(["eval_nll_loss", "eval_logp_margin"], {"uniform": [0.05, 0.5]})
    assert spec.metrics_needed() == ({"nll_loss", "logps/chosen", "logps/rejected"}, set())
    every = {name for name, objective in OBJECTIVES.items()}
    for name in every:
        eval_needed, train_needed = spec_with([name], 0.1).metrics_needed()
        assert eval_needed or train_needed, name
