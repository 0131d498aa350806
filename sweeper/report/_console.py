"""`sweeper analyze` in a terminal: the analysis as rich tables."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from ..analysis import FANOVA, FLAT, GAP, StudyAnalysis, describe_interaction, what_we_learned
from ..study import label_legend, short_label
from ._figures import _interval, _number

_LABEL_STYLES = {"underfit": "blue", "balanced": "green", "overfit": "red"}
_VERDICT_STYLES = {"supported": "green", "contradicted": "red", "inconclusive": "yellow"}


def _table(title: str, **options) -> Table:
    # no vertical rules: an 80-column terminal keeps room for the cells (names are short_label'd, legend below)
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", **options)


def print_analysis(analysis: StudyAnalysis, console: Console | None = None) -> None:
    console = console or Console()
    names = [o.name for o in analysis.objectives]
    shown: list[str] = []  # long names shortened in the tables, for the legend at the end

    def short(name: str) -> str:
        shown.append(name)
        return short_label(name)

    console.print(f"[bold]{analysis.study_name}: what we learned[/]")
    for line in what_we_learned(analysis):
        console.print(f"- {line}", highlight=False)
    console.print()

    fits = _table(f"{analysis.study_name}: fit per trial ({analysis.loss_form}; * = Pareto front)")
    for column in ("#", *map(short, names), "train", "val", "gap", "rise", "fit"):
        fits.add_column(column, justify="right" if column != "fit" else "left")
    for trial in analysis.completed:
        fit = trial.fit
        label = fit.label or "-"
        fits.add_row(
            f"{trial.number}{'*' if trial.pareto else ''}", *(_number(trial.values[n]) for n in names),
            _number(fit.train_loss), _number(fit.eval_loss), _number(fit.generalization_gap, 3),
            _number(fit.eval_rise_after_min, 3), f"[{_LABEL_STYLES.get(label, '')}]{label}[/]",
        )
    console.print(fits)

    targets = [*names, GAP]
    importance = _table("Importance (fANOVA, share of variance)")
    importance.add_column("parameter")
    for target in targets:
        importance.add_column(short(target), justify="right")
    by_target = {i.target: i for i in analysis.importances if i.evaluator == FANOVA}
    for parameter in analysis.parameters:
        cells = [_number(by_target[t].values.get(parameter.name), 2) if t in by_target else "-" for t in targets]
        importance.add_row(short(parameter.name), *cells)
    console.print(importance)

    effects = _table("Effects: Spearman rho [95% bootstrap CI]; Δ = top - bottom third of the parameter ± seed SD",
                     show_lines=True)
    effects.add_column("parameter")
    for target in targets:
        effects.add_column(short(target), min_width=19)  # "+0.90 [+0.78,+0.95]" on one line
    by_pair = {(c.parameter, c.target): c for c in analysis.correlations}
    for parameter in dict.fromkeys(c.parameter for c in analysis.correlations):  # first-seen order
        cells = []
        for target in targets:
            c = by_pair.get((parameter, target))
            if c is None or c.rho is None:
                cells.append("-")
                continue
            noise = f" ±{c.seed_sd:.2g}" if c.seed_sd is not None else ""
            cells.append(f"{c.rho:+.2f} [{c.ci_low:+.2f},{c.ci_high:+.2f}]\nΔ {_number(c.high_minus_low, 3)}{noise}")
        effects.add_row(short(parameter), *cells)
    console.print(effects)

    if analysis.effects:
        shapes = _table("Effect shapes (partial dependence of a GP surrogate; Δ over the range)")
        shapes.add_column("parameter")
        shape_targets = list(dict.fromkeys(e.target for e in analysis.effects))
        for target in shape_targets:
            shapes.add_column(short(target))
        by_key = {(e.parameter, e.target): e for e in analysis.effects}
        for parameter in dict.fromkeys(e.parameter for e in analysis.effects):
            cells = []
            for target in shape_targets:
                effect = by_key.get((parameter, target))
                if effect is None:
                    cells.append("-")
                elif effect.optimum is not None:
                    best = "max" if effect.maximize else "min"
                    cells.append(f"{best} at {effect.optimum:.3g}\n[{effect.optimum_low:.3g}, {effect.optimum_high:.3g}]")
                elif effect.shape in ("increasing", "decreasing"):
                    cells.append(f"{effect.shape}\n{effect.change:+.3g}")
                else:
                    cells.append("flat" if effect.shape == FLAT else effect.shape)
            shapes.add_row(short(parameter), *cells)
        console.print(shapes)

    if analysis.interactions:
        called = [pair for pair in analysis.interactions if pair.called]
        console.print("Interactions (H²: share of a pair's joint effect that is not additive; called above noise):")
        for pair in sorted(called, key=lambda pair: pair.size / (pair.tolerance or 1), reverse=True)[:5]:
            console.print(f"  {describe_interaction(pair)}")
        if not called:
            strongest = max(analysis.interactions, key=lambda pair: pair.h2)
            console.print(f"  none above noise; the largest share: {describe_interaction(strongest)}")

    if analysis.advice:
        advice = _table("Advice: the one-parameter move the surrogate predicts helps most [90% interval]")
        for column in ("#", "fit", "move", "predicted change"):
            advice.add_column(column)
        for item in analysis.advice:
            if item.parameter is None:
                advice.add_row(str(item.trial), item.label, "-", f"no clear move lowers the {short(item.target)}")
                continue
            verb = "raise" if item.suggested > item.current else "lower"
            agreement = "" if item.notes_agree is None else (" (notes agree)" if item.notes_agree else " (notes disagree)")
            changes = [f"{short(item.target)} {item.change:+.3g} [{item.change_low:+.3g}, {item.change_high:+.3g}]"]
            changes += [f"{short(name)} {m:+.3g} [{lo:+.3g}, {hi:+.3g}]" for name, (m, lo, hi) in item.objectives.items()]
            advice.add_row(str(item.trial), item.label,
                           f"{verb} {short(item.parameter)} {item.current:.3g} -> {item.suggested:.3g}{agreement}",
                           "\n".join(changes))
        console.print(advice)

    # one block per claim: six columns of prose do not fit 80 characters
    console.print("[bold]The practitioner's bias-variance claims[/]")
    for claim in analysis.claims:
        shown_as = f" ({claim.parameter})" if claim.parameter and claim.parameter != claim.hyperparameter else ""
        name = claim.hyperparameter + shown_as
        console.print(f"- {name}: [{_VERDICT_STYLES[claim.verdict]}]{claim.verdict}[/]", highlight=False)
        console.print(f"  predicts: {claim.prediction}", highlight=False)
        console.print(
            f"  rho with the gap {_number(claim.gap_rho, 2)} {_interval(*(claim.gap_ci or (None, None)))}, "
            f"with the training loss {_number(claim.train_loss_rho, 2)} "
            f"{_interval(*(claim.train_loss_ci or (None, None)))}",
            highlight=False,
        )
        console.print(f"  why: {claim.reason}", highlight=False)
        for side in claim.sides:
            console.print(
                f"  {side.side} {side.split:.3g} ({side.n_trials} trials): "
                f"[{_VERDICT_STYLES[side.verdict]}]{side.verdict}[/]; {side.reason}",
                highlight=False,
            )

    spread = analysis.seed_spread
    if spread.groups:
        noise = _table(f"Seed-to-seed SD ({spread.n_runs} replicate runs in {spread.replicates_study})")
        noise.add_column("source trial")
        metrics = list(spread.pooled_sd)
        for metric in metrics:
            noise.add_column(short(metric), justify="right")
        for group in spread.groups:
            noise.add_row(str(group.source_trial), *(_number(group.sd.get(m), 3) for m in metrics))
        noise.add_row("pooled", *(_number(spread.pooled_sd[m], 3) for m in metrics))
        console.print(noise)
    legend = label_legend(shown)
    if legend:
        console.print(f"columns: {legend}", highlight=False)
    for note in analysis.notes:
        console.print(f"note: {note}")
