"""Named objectives: what a study optimises, computed from TRL's ORPO metrics.

TRL's ORPO loss is `nll_loss - beta * log_odds_ratio` and its rewards are `beta * logps`, so raw `eval_loss` and
`eval_rewards/margins` change with beta by construction. A study that searches beta must compare trials on
beta-free forms; the raw ones are kept (flagged `beta_scaled`) for studies that hold beta fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Direction = Literal["minimize", "maximize"]


class MissingMetricError(KeyError):
    """An objective needs a metric the trial did not log."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class _Metrics:
    objective: str
    eval_metrics: Mapping[str, float]
    train_metrics: Mapping[str, float]
    beta: float

    def eval(self, name: str) -> float:
        return self._get(self.eval_metrics, f"eval_{name}", "evaluation")

    def train(self, name: str) -> float:
        return self._get(self.train_metrics, name, "training")

    def _get(self, metrics: Mapping[str, float], key: str, split: str) -> float:
        if key not in metrics:
            logged = ", ".join(sorted(metrics)) or "nothing"
            raise MissingMetricError(
                f"objective {self.objective!r} needs the {split} metric {key!r}, which the trial did not log "
                f"(logged: {logged}). Did the trial run an evaluation (eval_steps, eval split)?"
            )
        return float(metrics[key])


@dataclass(frozen=True)
class Objective:
    name: str
    direction: Direction
    beta_scaled: bool
    description: str
    formula: Callable[[_Metrics], float]
    # For beta-scaled objectives: why, and which beta-free objective to use instead.
    beta_note: str = ""

    def compute(self, eval_metrics: Mapping[str, float], train_metrics: Mapping[str, float], beta: float) -> float:
        return self.formula(_Metrics(self.name, eval_metrics, train_metrics, beta))


_REGISTERED = (
    Objective(
        "eval_nll_loss",
        "minimize",
        False,
        "Validation NLL of the chosen completions: ORPO's supervised term, beta-free.",
        lambda m: m.eval("nll_loss"),
    ),
    Objective(
        "eval_logp_margin",
        "maximize",
        False,
        "Validation mean log-prob of chosen minus rejected (avg per token) = reward margin / beta.",
        lambda m: m.eval("logps/chosen") - m.eval("logps/rejected"),
    ),
    Objective(
        "eval_odds_ratio_loss",
        "minimize",
        False,
        "Validation -mean logsigmoid(log odds chosen vs rejected): ORPO's preference term without beta.",
        lambda m: -m.eval("log_odds_ratio"),
    ),
    Objective(
        "eval_loss_unit_beta",
        "minimize",
        False,
        "Validation ORPO loss at beta = 1 (nll - log_odds_ratio): one loss comparable across beta.",
        lambda m: m.eval("nll_loss") - m.eval("log_odds_ratio"),
    ),
    Objective(
        "eval_reward_accuracy",
        "maximize",
        False,
        "Share of validation pairs whose chosen reward beats the rejected one; sign-only, so beta-free.",
        lambda m: m.eval("rewards/accuracies"),
    ),
    Objective(
        "train_nll_loss",
        "minimize",
        False,
        "Final training NLL of the chosen completions; next to eval_nll_loss it shows overfitting.",
        lambda m: m.train("nll_loss"),
    ),
    Objective(
        "eval_loss",
        "minimize",
        True,
        "Validation ORPO loss as TRL logs it: nll_loss - beta * log_odds_ratio.",
        lambda m: m.eval("loss"),
        beta_note=(
            "eval_loss = eval_nll_loss - beta * eval_log_odds_ratio, and eval_log_odds_ratio <= 0, so the raw loss "
            "grows with beta by construction: trials with a larger beta look worse for that reason alone. "
            "Use eval_loss_unit_beta (or eval_nll_loss and eval_odds_ratio_loss) to compare across beta"
        ),
    ),
    Objective(
        "eval_reward_margin",
        "maximize",
        True,
        "Validation reward margin as TRL logs it (eval_rewards/margins) = beta * logp margin.",
        lambda m: m.eval("rewards/margins"),
        beta_note=(
            "eval_reward_margin = beta * (eval_logps/chosen - eval_logps/rejected), so its size scales with beta by "
            "construction: trials with a larger beta look better (worse while the margin is negative) for that "
            "reason alone. Use eval_logp_margin to compare across beta"
        ),
    ),
)
OBJECTIVES: dict[str, Objective] = {objective.name: objective for objective in _REGISTERED}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; known objectives: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]

