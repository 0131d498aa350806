"""Per-trial fit: final training and validation loss in a beta-free form, the generalization gap, the validation
curve's rise after its minimum, and the underfit / balanced / overfit label (rule: `FitRule`, docs/analysis.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ._data import BALANCED, OVERFIT, UNDERFIT, FitRule, TrialFit

_TINY = 1e-12


LOSS_METRICS = ("nll_loss", "log_odds_ratio")  # all that the fit and the Pareto trials' loss curves read


def loss_series(curve_rows: Sequence[Mapping[str, Any]], split: str) -> list[tuple[int, float]]:
    """(step, nll_loss - log_odds_ratio) at every step of `split` where both were logged and finite."""
    by_metric: dict[str, dict[int, float]] = {metric: {} for metric in LOSS_METRICS}
    for row in curve_rows:
        if row["split"] == split and row["metric"] in by_metric and row["value"] is not None:
            by_metric[row["metric"]][int(row["step"])] = float(row["value"])
    nll, log_odds = by_metric["nll_loss"], by_metric["log_odds_ratio"]
    return [(step, nll[step] - log_odds[step]) for step in sorted(nll) if step in log_odds]


def _final(attrs: Mapping[str, Any], prefix: str, series: list[tuple[int, float]]) -> tuple[float | None, float | None]:
    """(LOSS_FORM, nll_loss) at the end of training: the stored final metrics, else the curve's last point."""
    nll, log_odds = attrs.get(f"{prefix}_nll_loss"), attrs.get(f"{prefix}_log_odds_ratio")
    if nll is not None and log_odds is not None:
        return float(nll) - float(log_odds), float(nll)
    if series:
        return series[-1][1], (float(nll) if nll is not None else None)
    return None, (float(nll) if nll is not None else None)


def measure_fit(metrics: Mapping[str, Any], curve_rows: Sequence[Mapping[str, Any]]) -> TrialFit:
    """Everything but the label, which needs the whole study (see `label_fits`)."""
    train_series, eval_series = loss_series(curve_rows, "train"), loss_series(curve_rows, "eval")
    train_loss, train_nll = _final(metrics, "train", train_series)
    eval_loss, eval_nll = _final(metrics, "eval", eval_series)
    gap = eval_loss - train_loss if eval_loss is not None and train_loss is not None else None
    gap_ratio = gap / eval_loss if gap is not None and eval_loss and eval_loss > _TINY else None

    start = min_loss = min_step = rise = rise_ratio = None
    if eval_series:
        start = eval_series[0][1]
        min_step, min_loss = min(eval_series, key=lambda point: point[1])
        final = eval_loss if eval_loss is not None else eval_series[-1][1]
        if final < min_loss:  # the stored final evaluation can fall after the last curve point
            min_loss, min_step = final, eval_series[-1][0]
        rise = final - min_loss
        gained = start - min_loss
        rise_ratio = rise / gained if gained > _TINY else None
    return TrialFit(
        train_loss=train_loss,
        eval_loss=eval_loss,
        train_nll_loss=train_nll,
        eval_nll_loss=eval_nll,
        generalization_gap=gap,
        gap_ratio=gap_ratio,
        eval_start_loss=start,
        eval_min_loss=min_loss,
        eval_min_step=min_step,
        eval_rise_after_min=rise,
        rise_ratio=rise_ratio,
        improvement_ratio=None,
        label=None,
        reason="",
    )


def best_improvement(fits: Sequence[TrialFit]) -> float | None:
    """The study's largest validation improvement from the untrained start to the final evaluation."""
    gains = [
        fit.eval_start_loss - fit.eval_loss
        for fit in fits
        if fit.eval_start_loss is not None and fit.eval_loss is not None
    ]
    return max(gains) if gains else None


def label_fit(fit: TrialFit, best_gain: float | None, rule: FitRule) -> TrialFit:
    """The fit with its label and the clause of the rule that decided it."""
    if fit.train_loss is None or fit.eval_loss is None:
        return replace(fit, label=None, reason="final training or validation loss missing")
    improvement_ratio = None
    if best_gain is not None and best_gain > _TINY and fit.eval_start_loss is not None:
        improvement_ratio = (fit.eval_start_loss - fit.eval_loss) / best_gain
    fit = replace(fit, improvement_ratio=improvement_ratio)

    if fit.gap_ratio is not None and fit.gap_ratio >= rule.overfit_gap_ratio:
        return replace(
            fit, label=OVERFIT,
            reason=f"validation loss ends {fit.gap_ratio:.0%} above training loss (>= {rule.overfit_gap_ratio:.0%})",
        )
    if fit.rise_ratio is not None and fit.rise_ratio >= rule.overfit_rise_ratio:
        return replace(
            fit, label=OVERFIT,
            reason=(
                f"validation loss rose {fit.eval_rise_after_min:.4g} after its minimum at step {fit.eval_min_step}, "
                f"{fit.rise_ratio:.0%} of its gain (>= {rule.overfit_rise_ratio:.0%})"
            ),
        )
    if best_gain is not None and best_gain <= _TINY:
        return replace(fit, label=UNDERFIT, reason="no trial of the study improved its validation loss")
    if improvement_ratio is not None and improvement_ratio < rule.underfit_improvement_ratio:
        return replace(
            fit, label=UNDERFIT,
            reason=(
                f"validation loss improved {improvement_ratio:.0%} as much as the study's best trial "
                f"(< {rule.underfit_improvement_ratio:.0%}), with no sign of overfitting"
            ),
        )
    return replace(fit, label=BALANCED, reason="neither overfitting nor short of the study's best improvement")
