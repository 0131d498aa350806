"""One plotly figure per view of a `StudyAnalysis`. Drawing only: every number comes from the analysis."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis import (
    BALANCED,
    OPTIMUM_INSIDE,
    EFFECTIVE_BATCH_SIZE,
    FANOVA,
    GAP,
    OVERFIT,
    PED_ANOVA,
    UNDERFIT,
    StudyAnalysis,
    TrialRow,
    parameter_value,
    pareto_then_latest,
)
from ._tables import Table

LABEL_COLORS = {UNDERFIT: "#1f77b4", BALANCED: "#2ca02c", OVERFIT: "#d62728", None: "#7f7f7f"}
LABEL_FILLS = {UNDERFIT: "#dbe9f6", BALANCED: "#dff0df", OVERFIT: "#f8d7da", None: "#eeeeee"}
VERDICT_COLORS = {"supported": "#d9f2d9", "contradicted": "#f8d7da", "inconclusive": "#eeeeee"}
_HEIGHT = 460


def _number(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _interval(low, high) -> str:
    return f"[{low:+.2f}, {high:+.2f}]" if low is not None and high is not None else "-"


# Above this many completed trials the figures keep the file small and the page quick: hover text in full for the
# Pareto trials only, WebGL scatter, parallel coordinates and the fit table on a subset (named in their titles).
LARGE_STUDY = 500
MAX_PARALLEL_LINES = 1000
MAX_GAP_DOTS = 2000
MAX_TABLE_ROWS = 150  # the fit table's rows: a page one reads; every trial is in `sweeper analyze --json`


def _hovers(analysis: StudyAnalysis, trials: Sequence[TrialRow]) -> list[str]:
    if len(analysis.completed) <= LARGE_STUDY:
        return [_hover(t) for t in trials]
    return [_hover(t) if t.pareto else f"trial {t.number}" for t in trials]


def _hover(trial: TrialRow) -> str:
    params = "<br>".join(f"{name} = {_number(value)}" for name, value in trial.params.items())
    values = "<br>".join(f"{name} = {_number(value)}" for name, value in (trial.values or {}).items())
    fit = f"<br>fit: {trial.fit.label} (gap {_number(trial.fit.generalization_gap)})" if trial.fit else ""
    return f"trial {trial.number}{' (Pareto)' if trial.pareto else ''}<br>{values}<br>{params}{fit}"


def _scatter_for(analysis: StudyAnalysis):
    """WebGL above LARGE_STUDY trials: SVG draws each of thousands of markers as its own element (a 10,000-trial
    report took 24 s to open in headless Chromium)."""
    return go.Scattergl if len(analysis.completed) > LARGE_STUDY else go.Scatter


def _steps_only(numbers: Sequence[int], values: Sequence[float]) -> tuple[list[int], list[float]]:
    """A running best as its steps: the first point, each point where the value changes, and the last. Drawn as a
    step line it is the same curve, with a marker per improvement instead of one per trial."""
    kept = [i for i in range(len(values)) if i in (0, len(values) - 1) or values[i] != values[i - 1]]
    return [numbers[i] for i in kept], [values[i] for i in kept]


def pareto_front(analysis: StudyAnalysis) -> go.Figure:
    """Completed trials in objective space, colored by log10(beta); the Pareto front joined and ringed."""
    completed = analysis.completed
    names = [objective.name for objective in analysis.objectives]
    betas = [math.log10(t.beta) if t.beta else math.nan for t in completed]  # no beta: a trial with no config
    marker = dict(
        color=betas, colorscale="Viridis", showscale=True, size=10,
        colorbar=dict(title="log10 beta"),
        line=dict(width=[2.5 if t.pareto else 0.5 for t in completed], color="black"),
    )
    hover = _hovers(analysis, completed)
    scatter = _scatter_for(analysis)
    figure = go.Figure()
    if len(names) == 1:
        figure.add_trace(scatter(x=[t.number for t in completed], y=[t.values[names[0]] for t in completed],
                                    mode="markers", marker=marker, hovertext=hover, hoverinfo="text", name="trials"))
        figure.update_layout(xaxis_title="trial", yaxis_title=f"{names[0]} ({analysis.objectives[0].direction})")
    elif len(names) == 2:
        xs, ys = [t.values[names[0]] for t in completed], [t.values[names[1]] for t in completed]
        figure.add_trace(scatter(x=xs, y=ys, mode="markers", marker=marker, hovertext=hover, hoverinfo="text",
                                 name="trials"))
        front = sorted(analysis.pareto_trials, key=lambda t: t.values[names[0]])
        figure.add_trace(go.Scatter(x=[t.values[names[0]] for t in front], y=[t.values[names[1]] for t in front],
                                    mode="lines", line=dict(color="black", dash="dot"), name="Pareto front",
                                    hoverinfo="skip"))
        figure.update_layout(
            xaxis_title=f"{names[0]} ({analysis.objectives[0].direction})",
            yaxis_title=f"{names[1]} ({analysis.objectives[1].direction})",
        )
    else:
        figure.add_trace(go.Splom(dimensions=[dict(label=n, values=[t.values[n] for t in completed]) for n in names],
                                  marker=marker, hovertext=hover, hoverinfo="text", name="trials"))
    figure.update_layout(title="Pareto front (ringed, dotted line), colored by beta", height=_HEIGHT,
                         legend=dict(orientation="h", y=-0.2))
    return figure


def hypervolume_history(analysis: StudyAnalysis) -> go.Figure:
    figure = go.Figure()
    history = analysis.hypervolume
    if history is not None:
        numbers, values = _steps_only(history.trial_numbers, history.values)
        figure.add_trace(go.Scatter(x=numbers, y=values, mode="lines+markers", line_shape="hv", name="hypervolume"))
        reference = ", ".join(_number(v) for v in history.reference_point)
        figure.update_layout(title=f"Hypervolume history (reference point {reference})",
                             xaxis_title="trial", yaxis_title="hypervolume")
    else:  # one objective: the best value so far is what a hypervolume would show
        objective = analysis.objectives[0]
        pick = min if objective.direction == "minimize" else max
        numbers, best, running = [], [], None
        for trial in sorted(analysis.completed, key=lambda t: t.number):
            value = trial.values[objective.name]
            running = value if running is None else pick(running, value)
            numbers.append(trial.number)
            best.append(running)
        numbers, best = _steps_only(numbers, best)
        figure.add_trace(go.Scatter(x=numbers, y=best, mode="lines+markers", line_shape="hv",
                                    name=f"best {objective.name}"))
        figure.update_layout(title=f"Best {objective.name} so far", xaxis_title="trial", yaxis_title=objective.name)
    figure.update_layout(height=_HEIGHT - 80)
    return figure


def importances(analysis: StudyAnalysis) -> go.Figure:
    """One panel per target (the objectives and the gap); fANOVA and PED-ANOVA side by side."""
    targets = [*(o.name for o in analysis.objectives), GAP]
    figure = make_subplots(rows=1, cols=len(targets), subplot_titles=targets, shared_yaxes=True)
    parameters = [p.name for p in analysis.parameters]
    colors = {FANOVA: "#4c78a8", PED_ANOVA: "#f58518"}
    for column, target in enumerate(targets, start=1):
        errors = {r.error for r in analysis.importances if r.target == target and r.error}
        if errors:  # say why a panel is empty instead of leaving it blank
            domain = figure.layout[f"xaxis{column if column > 1 else ''}"].domain
            figure.add_annotation(text="<br>".join(sorted(errors))[:200], showarrow=False, font=dict(color="#8a5a00"),
                                  xref="paper", yref="paper", x=sum(domain) / 2, y=0.5, xanchor="center")
        for result in analysis.importances:
            if result.target != target or result.error:
                continue
            label = result.evaluator + (" (negated: maximised)" if result.negated_for_maximize else "")
            figure.add_trace(
                go.Bar(y=parameters, x=[result.values.get(p, 0.0) for p in parameters], orientation="h",
                       name=result.evaluator, legendgroup=result.evaluator, showlegend=column == 1,
                       marker_color=colors.get(result.evaluator), hovertext=label),
                row=1, col=column,
            )
    figure.update_layout(title="Hyperparameter importance per objective and for the generalization gap",
                         barmode="group", height=_HEIGHT, legend=dict(orientation="h", y=-0.15))
    return figure


def parallel_coordinates(analysis: StudyAnalysis) -> go.Figure:
    completed = analysis.completed
    shown = "completed trials"
    if len(completed) > MAX_PARALLEL_LINES:  # thousands of lines are one blot, and slow to draw
        shown = f"{MAX_PARALLEL_LINES} of {len(completed)} completed trials (the Pareto ones, then the latest)"
        completed = pareto_then_latest(completed, MAX_PARALLEL_LINES)
    dimensions = []
    for parameter in analysis.parameters:
        # a study resumed with a changed space (allowed explicitly) has trials without this parameter
        raw = [t.params.get(parameter.name) for t in completed]
        if not parameter.numeric:
            choices = sorted({str(v) for v in raw})
            dimensions.append(dict(label=parameter.name, values=[choices.index(str(v)) for v in raw],
                                   tickvals=list(range(len(choices))), ticktext=choices))
        elif parameter.log_scale:
            dimensions.append(dict(label=f"log10 {parameter.name}", values=[math.log10(v) if v else math.nan for v in raw]))
        else:
            dimensions.append(dict(label=parameter.name, values=[math.nan if v is None else v for v in raw]))
    for objective in analysis.objectives:
        dimensions.append(dict(label=objective.name, values=[t.values[objective.name] for t in completed]))
    gaps = [
        t.fit.generalization_gap if t.fit and t.fit.generalization_gap is not None else float("nan")
        for t in completed
    ]
    dimensions.append(dict(label=GAP, values=gaps))
    first = analysis.objectives[0]
    figure = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line=dict(color=[t.values[first.name] for t in completed], colorscale="Viridis", showscale=True,
                  reversescale=first.direction == "maximize", colorbar=dict(title=first.name)),
    ))
    # axis titles above their axes, tilted, with room: side by side they overlapped
    figure.update_traces(labelangle=-20, labelside="top")
    figure.update_layout(title=f"Parallel coordinates of {shown} (color: {first.name})", height=_HEIGHT + 60,
                         margin=dict(t=140))
    return figure


def learning_curves(analysis: StudyAnalysis) -> go.Figure:
    figure = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    numbers = sorted({c.trial_number for c in analysis.pareto_curves})
    for series in analysis.pareto_curves:
        color = palette[numbers.index(series.trial_number) % len(palette)]
        figure.add_trace(go.Scatter(
            x=series.steps, y=series.values, mode="lines+markers" if series.split == "eval" else "lines",
            line=dict(color=color, dash="solid" if series.split == "eval" else "dot"),
            name=f"trial {series.trial_number} {'validation' if series.split == 'eval' else 'training'}",
            legendgroup=str(series.trial_number),
        ))
    figure.update_layout(
        title=f"Learning curves of the Pareto trials ({analysis.loss_form}: solid validation, dotted training)",
        xaxis_title="optimizer step", yaxis_title=analysis.loss_form, height=_HEIGHT,
    )
    return figure


SHAPE_COLORS = {"increasing": "#d62728", "decreasing": "#1f77b4", OPTIMUM_INSIDE: "#9467bd"}


def effect_shapes(analysis: StudyAnalysis) -> go.Figure | Table:
    """Partial dependence of each target on each parameter with its 90% band; the panel names the shape."""
    parameters = list(dict.fromkeys(e.parameter for e in analysis.effects))
    targets = list(dict.fromkeys(e.target for e in analysis.effects))
    if not parameters:
        return Table(["effect shapes"], [["fewer completed trials than a surrogate needs (8)"]], "Effect shapes")
    by_key = {(e.parameter, e.target): e for e in analysis.effects}
    titles = []
    for parameter in parameters:
        for target in targets:
            effect = by_key.get((parameter, target))
            titles.append(f"{parameter} → {target}<br>{effect.shape if effect else '-'}")
    figure = make_subplots(rows=len(parameters), cols=len(targets), subplot_titles=titles,
                           vertical_spacing=0.35 / len(parameters), horizontal_spacing=0.06)
    for row, parameter in enumerate(parameters, start=1):
        for column, target in enumerate(targets, start=1):
            effect = by_key.get((parameter, target))
            if effect is None:
                continue
            color = SHAPE_COLORS.get(effect.shape, "#7f7f7f")
            figure.add_trace(go.Scatter(x=effect.grid + effect.grid[::-1], y=effect.high + effect.low[::-1],
                                        fill="toself", fillcolor="rgba(127,127,127,0.2)", line=dict(width=0),
                                        hoverinfo="skip", showlegend=False), row=row, col=column)
            figure.add_trace(go.Scatter(x=effect.grid, y=effect.mean, mode="lines", line=dict(color=color),
                                        name=effect.shape, showlegend=False,
                                        hovertemplate=f"{parameter} %{{x:.3g}}<br>{target} %{{y:.4g}}<extra></extra>"),
                             row=row, col=column)
            if effect.optimum is not None:
                figure.add_vrect(x0=effect.optimum_low, x1=effect.optimum_high, fillcolor=color, opacity=0.15,
                                 line_width=0, row=row, col=column)
            if effect.log_scale:
                figure.update_xaxes(type="log", row=row, col=column)
    figure.update_annotations(font_size=11)
    figure.update_layout(title="Effect shapes: partial dependence of a GP surrogate, 90% posterior band",
                         height=max(_HEIGHT, 250 * len(parameters)), showlegend=False)
    return figure


def strongest_interaction(analysis: StudyAnalysis):
    """The pair to draw: the largest interaction above noise, an objective's first; else the largest for the first
    objective (drawn, and said to be within noise)."""
    if not analysis.interactions:
        return None
    objectives = [o.name for o in analysis.objectives]
    called = [pair for pair in analysis.interactions if pair.called]
    if called:
        return max(called, key=lambda pair: (pair.target in objectives,
                                             pair.size / pair.tolerance if pair.tolerance else 0))
    first = [pair for pair in analysis.interactions if objectives and pair.target == objectives[0]]
    return max(first or analysis.interactions, key=lambda pair: pair.size)


def interaction_surface(analysis: StudyAnalysis) -> go.Figure | Table:
    """Two-parameter partial dependence of the strongest pair, with the trials' own values on top."""
    pair = strongest_interaction(analysis)
    if pair is None:
        return Table(["interactions"], [["fewer completed trials than a surrogate needs (8)"]], "Interactions")
    figure = go.Figure(go.Contour(
        x=pair.grid_second, y=pair.grid_first, z=pair.surface, colorscale="Viridis", colorbar=dict(title=pair.target),
        hovertemplate=f"{pair.second} %{{x:.3g}}<br>{pair.first} %{{y:.3g}}<br>{pair.target} %{{z:.4g}}<extra></extra>",
    ))
    trials = [t for t in analysis.trials if t.state == "COMPLETE"]
    xs = [parameter_value(t, pair.second) for t in trials]
    ys = [parameter_value(t, pair.first) for t in trials]
    shown = [(x, y, t.number) for x, y, t in zip(xs, ys, trials) if x is not None and y is not None]
    if shown:
        figure.add_trace(go.Scatter(x=[s[0] for s in shown], y=[s[1] for s in shown], mode="markers",
                                    marker=dict(color="white", line=dict(color="black", width=1), size=7),
                                    text=[f"trial {s[2]}" for s in shown], hoverinfo="text", showlegend=False))
    verdict = "interaction above noise" if pair.called else "no interaction above noise; the strongest pair"
    figure.update_layout(
        title=f"{pair.first} x {pair.second} → {pair.target}: {verdict} (H² {pair.h2:.2f}, size {pair.size:.3g}, "
              f"noise {pair.tolerance:.3g})",
        xaxis_title=pair.second, yaxis_title=pair.first, height=_HEIGHT,
    )
    for axis, name in (("xaxis", pair.second), ("yaxis", pair.first)):
        if any(p.name == name and p.log_scale for p in analysis.parameters):
            figure.update_layout({axis: dict(type="log")})
    return figure


def _pareto_and_sample(trials: Sequence[TrialRow], limit: int) -> list[TrialRow]:
    """At most `limit` trials in trial order: the Pareto ones, and a random sample of the rest (seeded: the same
    report every time). A sample shows how the trials spread; the latest trials of a sampler cluster near its best."""
    pareto = [t for t in trials if t.pareto][:limit]
    rest = [t for t in trials if not t.pareto]
    picked = random.Random(0).sample(rest, min(len(rest), limit - len(pareto)))
    return sorted(pareto + picked, key=lambda trial: trial.number)


def gap_versus_parameters(analysis: StudyAnalysis) -> go.Figure:
    """Gap against each numeric hyperparameter and the effective batch size, colored by fit label."""
    columns = [p for p in analysis.parameters if p.numeric]
    names = [p.name for p in columns] + [EFFECTIVE_BATCH_SIZE]
    correlations = {c.parameter: c for c in analysis.correlations if c.target == GAP}
    titles = [f"{name}<br>rho {_number(correlations[name].rho, 2) if name in correlations else '-'} "
              f"{_interval(correlations[name].ci_low, correlations[name].ci_high) if name in correlations else ''}"
              for name in names]
    n_columns = 3
    rows = math.ceil(len(names) / n_columns)
    figure = make_subplots(rows=rows, cols=n_columns, subplot_titles=titles, vertical_spacing=0.5 / max(rows, 1))
    fitted = [t for t in analysis.completed if t.fit and t.fit.generalization_gap is not None]
    shown = ""
    if len(fitted) > MAX_GAP_DOTS:  # six panels of 10,000 dots each: 3 MB and seconds to open, and one blot
        shown = f" ({MAX_GAP_DOTS} of {len(fitted)} trials: the Pareto ones and a random sample of the rest)"
        fitted = _pareto_and_sample(fitted, MAX_GAP_DOTS)
    scatter = _scatter_for(analysis)
    for index, name in enumerate(names):
        row, column = divmod(index, n_columns)
        for label in (UNDERFIT, BALANCED, OVERFIT, None):
            group = [t for t in fitted if t.fit.label == label]
            if not group:
                continue
            xs = [parameter_value(t, name) for t in group]
            figure.add_trace(
                scatter(x=xs, y=[t.fit.generalization_gap for t in group], mode="markers",
                        marker=dict(color=LABEL_COLORS[label], size=8), name=label or "unlabelled",
                        legendgroup=label or "unlabelled", showlegend=index == 0,
                        hovertext=_hovers(analysis, group), hoverinfo="text"),
                row=row + 1, col=column + 1,
            )
        if index < len(columns) and columns[index].log_scale:
            figure.update_xaxes(type="log", row=row + 1, col=column + 1)
    figure.update_yaxes(title_text="gap")
    figure.update_layout(title=f"Generalization gap ({analysis.loss_form}, validation - training) per hyperparameter"
                               f"{shown}",
                         height=max(_HEIGHT, 330 * rows), legend=dict(orientation="h", y=-0.08))
    return figure


def _sides(claim) -> str:
    """`below 4.1e-03 (12 trials): contradicted, gap rho -0.71 [...]` per side, or `-`."""
    return "<br>".join(f"{side.side} {side.split:.3g} ({side.n_trials} trials): <b>{side.verdict}</b>, "
                       f"{side.reason.split(';')[0]}" for side in claim.sides) or "-"


def claims_table(analysis: StudyAnalysis) -> Table:
    claims = analysis.claims
    return Table(
        ["hyperparameter", "notes: high value", "notes: low value", "prediction", "rho with gap [95% CI]",
         "rho with training loss [95% CI]", "gap: top - bottom third", "seed SD of gap", "verdict", "why",
         "each side of an optimum inside the range"],
        [
            [c.hyperparameter + (f" ({c.parameter})" if c.parameter else "") for c in claims],
            [c.claim_high for c in claims],
            [c.claim_low for c in claims],
            [c.prediction for c in claims],
            [f"{_number(c.gap_rho, 2)} {_interval(*(c.gap_ci or (None, None)))}" for c in claims],
            [f"{_number(c.train_loss_rho, 2)} {_interval(*(c.train_loss_ci or (None, None)))}" for c in claims],
            [_number(c.gap_high_minus_low, 3) for c in claims],
            [_number(c.gap_seed_sd, 3) for c in claims],
            [c.verdict for c in claims],
            [c.reason for c in claims],
            [_sides(c) for c in claims],
        ],
        "The practitioner's bias-variance claims against this study",
        fill=[["white"] * len(claims)] * 8 + [[VERDICT_COLORS[c.verdict] for c in claims]]
        + [["white"] * len(claims)] * 2,
    )


def correlations_table(analysis: StudyAnalysis) -> Table:
    rows = [c for c in analysis.correlations if c.rho is not None]
    return Table(
        ["parameter", "target", "Spearman rho", "95% bootstrap CI", "effect", "top - bottom third", "seed SD",
         "trials"],
        [
            [c.parameter for c in rows], [c.target for c in rows], [_number(c.rho, 3) for c in rows],
            [_interval(c.ci_low, c.ci_high) for c in rows], [f"{c.direction} ({c.strength})" for c in rows],
            [_number(c.high_minus_low, 3) for c in rows], [_number(c.seed_sd, 3) for c in rows],
            [c.n_trials for c in rows],
        ],
        "Direction and strength of each effect, next to the seed-to-seed spread of the target",
    )


def fit_table(analysis: StudyAnalysis) -> Table:
    rows = [t for t in analysis.completed if t.fit]
    shown = "every completed trial"
    if len(rows) > MAX_TABLE_ROWS:
        shown = (f"{MAX_TABLE_ROWS} of {len(rows)} completed trials, the Pareto ones then the latest; every trial: "
                 "`sweeper analyze --json`")
        rows = pareto_then_latest(rows, MAX_TABLE_ROWS)
    return Table(
        ["trial", "training loss", "validation loss", "gap", "gap / validation", "rise after min",
         "share of best improvement", "fit", "rule"],
        [
            [f"{t.number}{' *' if t.pareto else ''}" for t in rows],
            [_number(t.fit.train_loss) for t in rows], [_number(t.fit.eval_loss) for t in rows],
            [_number(t.fit.generalization_gap, 3) for t in rows],
            [f"{t.fit.gap_ratio:.1%}" if t.fit.gap_ratio is not None else "-" for t in rows],
            [_number(t.fit.eval_rise_after_min, 3) for t in rows],
            [f"{t.fit.improvement_ratio:.0%}" if t.fit.improvement_ratio is not None else "-" for t in rows],
            [t.fit.label or "-" for t in rows], [t.fit.reason for t in rows],
        ],
        f"Fit of {shown} ({analysis.loss_form}; * = Pareto front)",
        fill=[["white"] * len(rows)] * 7 + [[LABEL_FILLS[t.fit.label] for t in rows]] + [["white"] * len(rows)],
    )


def advice_table(analysis: StudyAnalysis) -> Table:
    items = analysis.advice
    if not items:
        return Table(["advice"], [["no trial labelled overfit or underfit, or too few trials for a surrogate (8)"]],
                     "Advice per trial")
    moves, changes, agreement = [], [], []
    for item in items:
        if item.parameter is None:
            moves.append("-")
            changes.append(f"no single-parameter move clearly lowers the {item.target}")
            agreement.append("-")
            continue
        verb = "raise" if item.suggested > item.current else "lower"
        moves.append(f"{verb} {item.parameter} from {item.current:.3g} to {item.suggested:.3g}")
        parts = [f"{item.target} {item.change:+.3g} [{item.change_low:+.3g}, {item.change_high:+.3g}]"]
        parts += [f"{name} {m:+.3g} [{lo:+.3g}, {hi:+.3g}]" for name, (m, lo, hi) in item.objectives.items()]
        changes.append("<br>".join(parts))
        agreement.append("-" if item.notes_agree is None else ("agree" if item.notes_agree else "disagree"))
    return Table(
        ["trial", "fit", "move", "predicted change [90% interval]", "the notes"],
        [[item.trial for item in items], [item.label for item in items], moves, changes, agreement],
        "What to change: for each overfit or underfit trial, the move the surrogate predicts helps most",
        fill=[["white"] * len(items), [LABEL_FILLS[item.label] for item in items]] + [["white"] * len(items)] * 3,
    )


def seed_spread_table(analysis: StudyAnalysis) -> Table:
    spread = analysis.seed_spread
    metrics = list(spread.pooled_sd)
    if not spread.groups:
        return Table(["seed-to-seed spread"], [["no replicates yet: run `sweeper replicate STUDY --top K --seeds S`"]],
                     "Noise floor: replicates")
    header = ["source trial", "seeds", *(f"SD {m}" for m in metrics)]
    columns = [[g.source_trial for g in spread.groups] + ["pooled"],
               [", ".join(str(s) for s in g.seeds) for g in spread.groups] + [f"{spread.n_runs} replicate runs"]]
    for metric in metrics:
        columns.append([_number(g.sd.get(metric), 3) for g in spread.groups] + [_number(spread.pooled_sd[metric], 3)])
    return Table(header, columns, f"Noise floor: the same configuration with other seeds ({spread.replicates_study})")


def failures_table(analysis: StudyAnalysis) -> Table:
    rows = [t for t in analysis.trials if t.state in ("FAIL", "PRUNED")]
    if not rows:
        return Table(["failed and pruned trials"], [["none"]], "Failed and pruned trials")
    return Table(
        ["trial", "state", "reason", "detail", "params"],
        [
            [t.number for t in rows], [t.state for t in rows],
            [t.failure_reason or t.pruned_reason or (f"pruned at step {t.pruned_step}" if t.state == "PRUNED" else "-")
             for t in rows],
            [(t.failure_detail or "")[:300] for t in rows],
            [", ".join(f"{k}={_number(v, 3)}" for k, v in t.params.items()) for t in rows],
        ],
        "Failed and pruned trials, with their reasons",
    )
