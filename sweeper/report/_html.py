"""The report: one self-contained HTML file of plotly figures (plotly.js inline, so it opens offline) and HTML
tables. The page's text and tables show at once; each figure is drawn in a task of its own, those on screen first,
so a large study's report is readable while its lower figures are still drawing."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import plotly.graph_objects as go
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from ..analysis import StudyAnalysis, what_we_learned
from . import _figures
from ._tables import STYLE as TABLE_STYLE, Table

# (figure or table builder, section title, how to read it)
SECTIONS = (
    (_figures.pareto_front, "Pareto front",
     "Each dot is a completed trial in objective space; ringed dots joined by the dotted line are the Pareto front "
     "(no other trial is at least as good on every objective). Color is log10(beta): the objectives are beta-free, "
     "so a beta pattern here is a real effect, not a scale artefact."),
    (_figures.hypervolume_history, "Hypervolume history",
     "The volume the front dominates, up to each trial. A flat tail means new trials stopped improving the front."),
    (_figures.importances, "Importance per objective",
     "Share of each objective's (and the gap's) variation explained by each hyperparameter. fANOVA splits the "
     "variance; PED-ANOVA asks what sets the best 10% apart (maximised targets are negated first). Few trials make "
     "both rough: read them beside the correlations below."),
    (_figures.parallel_coordinates, "Parallel coordinates",
     "One line per completed trial through its hyperparameters, objectives and gap; drag along an axis to filter."),
    (_figures.learning_curves, "Learning curves of the Pareto trials",
     "Training (dotted) and validation (solid) loss of each Pareto trial. A validation curve turning up while "
     "training keeps falling is overfitting; both flat and high is underfitting."),
    (_figures.effect_shapes, "Effect shapes",
     "How each target moves with each hyperparameter, the others averaged over the trials (partial dependence of a "
     "Gaussian-process surrogate; grey: 90% posterior band). The panel names the shape most posterior draws agree "
     "on: increasing, decreasing, an optimum inside the range (shaded: its 90% interval), flat within noise (below "
     "the seed-to-seed SD where replicates exist), or unclear. A rank correlation cannot see an optimum inside the "
     "range; this can."),
    (_figures.interaction_surface, "Interactions",
     "Does one hyperparameter's effect depend on another? The two-parameter partial dependence of the strongest "
     "pair (dots: the trials). H² is the share of it that the two one-parameter effects do not explain; the size "
     "is that part's root mean square in the target's units, called an interaction only above the noise the effect "
     "shapes use. Every pair and target is in `sweeper analyze --json` (key `interactions`)."),
    (_figures.gap_versus_parameters, "Generalization gap per hyperparameter",
     "Validation minus training loss against each hyperparameter, colored by fit label. The panel title gives "
     "Spearman's rho with its 95% bootstrap interval: an interval that excludes 0 is a real direction."),
    (_figures.fit_table, "Fit of every trial",
     "Final losses in the beta-free form, the gap, the rise after the validation minimum, and the label with the "
     "clause of the rule that decided it (docs/analysis.md)."),
    (_figures.advice_table, "Advice per trial",
     "For each trial labelled overfit (its problem: the gap) or underfit (its problem: the training loss), the "
     "single-parameter move within the studied range that the Gaussian-process surrogates predict lowers that most, "
     "with the predicted change of it and of each objective (90% posterior interval), and whether the practitioner's "
     "notes advise the same direction. No row has a move where no move's interval excludes 0."),
    (_figures.claims_table, "Claims",
     "Each bias-variance claim of the practitioner's notes, its predicted signs, what the study measured and the verdict."),
    (_figures.correlations_table, "Effects",
     "Every hyperparameter against every target: rho, its interval, and the difference between the top and "
     "bottom third of the hyperparameter, beside the seed-to-seed SD of that target (the noise floor)."),
    (_figures.seed_spread_table, "Noise floor",
     "The same configuration re-run with other seeds (`sweeper replicate`): differences smaller than this spread "
     "are noise."),
    (_figures.failures_table, "Failed and pruned trials", "Every trial that produced no objectives, and why."),
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } section { margin-top: 2.2rem; } p.how { color: #555; max-width: 60rem; }
table.facts td { padding: 0.1rem 1rem 0.1rem 0; } ul.notes li { color: #8a5a00; }
"""


def _data_named(analysis: StudyAnalysis) -> str:
    """Each data version the completed trials ran on: source, pairs per split, fingerprint, trial count."""
    versions = Counter()
    for trial in analysis.completed:
        config = trial.training_config if isinstance(trial.training_config, dict) else {}
        source = (config.get("data") or {}).get("source", "?")
        rows = (f"{trial.train_rows} training / {trial.eval_rows} validation pairs"
                if trial.train_rows is not None else "pairs not stored")
        versions[(source, rows, trial.dataset_fingerprint or "not stored")] += 1
    return "; ".join(
        f"{source} ({rows}, fingerprint {fingerprint}{f', {count} trials' if len(versions) > 1 else ''})"
        for (source, rows, fingerprint), count in versions.items()
    ) or "no completed trial yet"


def _facts(analysis: StudyAnalysis) -> str:
    states = Counter(trial.state for trial in analysis.trials)
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in analysis.objectives)
    rule = analysis.fit_rule
    rows = [
        ("storage", analysis.storage),
        ("data", _data_named(analysis)),
        ("objectives", objectives),
        ("trials", ", ".join(f"{count} {state.lower()}" for state, count in sorted(states.items()))),
        ("Pareto front", (f"{len(analysis.pareto_numbers)} trial{'s' if len(analysis.pareto_numbers) != 1 else ''}: #"
                          + ", #".join(str(n) for n in analysis.pareto_numbers)) if analysis.pareto_numbers
         else "none yet"),
        ("loss compared", f"{analysis.loss_form} = nll_loss - log_odds_ratio (ORPO's loss at beta = 1)"),
        ("fit rule", f"overfit: gap >= {rule.overfit_gap_ratio:.0%} of validation loss or validation rose >= "
                     f"{rule.overfit_rise_ratio:.0%} of its gain after its minimum; underfit: validation improved "
                     f"< {rule.underfit_improvement_ratio:.0%} of the best trial's improvement; else balanced"),
        ("replicates", f"{analysis.seed_spread.n_runs} runs in {analysis.seed_spread.replicates_study}"),
    ]
    cells = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows)
    learned = "".join(f"<li>{html.escape(line)}</li>" for line in what_we_learned(analysis))
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in analysis.notes)
    return (f'<section class="learned"><h2>What we learned</h2><ul>{learned}</ul></section>'
            f'<table class="facts">{cells}</table>' + (f'<ul class="notes">{notes}</ul>' if notes else ""))


_FIGURE_CONFIG = {"displaylogo": False, "responsive": True}
_DEFAULT_HEIGHT = 450  # plotly's own, for a figure that sets none

# Before the figures: each registers a function that draws it. Once the page is parsed (plotly.js comes last, so the
# text shows before it is even read), one figure is drawn per task: first those within a screen of the view (so
# scrolling draws what comes into view next), then, after the load event, the rest in page order; all of them before
# printing. The performance marks say when the figures near the first view and all of them were drawn.
_DRAW_SCRIPT = """<script>window.PlotlyConfig = {MathJaxConfig: 'local'};
window.sweeperFigure = (function () {
  var pending = [], near = {}, seen = false, loaded = false, scheduled = false, nearDrawn = false, observer = null;
  function mark(name) { if (window.performance && performance.mark) { performance.mark(name); } }
  function draw(entry) {
    pending.splice(pending.indexOf(entry), 1);
    if (observer) { observer.unobserve(document.getElementById(entry.id)); }
    try { entry.draw(); } catch (error) { console.error(error); }  // one figure's failure stops no other
  }
  function markDrawn() {
    if (seen && !nearDrawn && !pending.some(function (entry) { return near[entry.id]; })) {
      nearDrawn = true;
      mark('sweeper-figures-near');
    }
    if (pending.length === 0 && document.documentElement.getAttribute('data-figures-drawn') !== 'all') {
      mark('sweeper-figures-all');
      document.documentElement.setAttribute('data-figures-drawn', 'all');
      document.dispatchEvent(new Event('sweeper-figures-drawn'));
    }
  }
  function step() {
    scheduled = false;
    var next = pending.filter(function (entry) { return near[entry.id]; })[0] || (loaded ? pending[0] : null);
    if (next) { draw(next); }
    markDrawn();
    if (next && pending.length) { schedule(); }
  }
  function schedule() { if (!scheduled) { scheduled = true; setTimeout(step, 0); } }
  document.addEventListener('DOMContentLoaded', function () {
    if ('IntersectionObserver' in window) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) { near[entry.target.id] = entry.isIntersecting; });
        seen = true;
        schedule();
      }, {rootMargin: '100% 0px'});
      pending.forEach(function (entry) { observer.observe(document.getElementById(entry.id)); });
    } else {
      seen = true;
      pending.forEach(function (entry) { near[entry.id] = true; });
      schedule();
    }
  });
  window.addEventListener('load', function () { loaded = true; schedule(); });
  window.addEventListener('beforeprint', function () { while (pending.length) { draw(pending[0]); } markDrawn(); });
  return function (id, drawFigure) { pending.push({id: id, draw: drawFigure}); };
})();
</script>"""


def _figure_div(figure: go.Figure, div_id: str) -> str:
    """The figure's div, sized as plotly sizes it, and the call that draws it, handed to the page's scheduler."""
    spec = figure.to_dict()
    layout = spec.get("layout", {})
    height = layout.get("height", layout.get("template", {}).get("layout", {}).get("height", _DEFAULT_HEIGHT))
    call = (f'Plotly.newPlot("{div_id}", {to_json_plotly(spec.get("data", []))}, {to_json_plotly(layout)}, '
            f"{json.dumps(_FIGURE_CONFIG)})")
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>'
            f'<script>sweeperFigure("{div_id}", function () {{ return {call}; }});</script>')


def render_report(analysis: StudyAnalysis) -> str:
    """The whole report as one HTML string, plotly.js inlined once at its end."""
    parts = []
    for index, (build, title, how) in enumerate(SECTIONS):
        shown = build(analysis)
        div = shown.to_html(f"figure-{index}") if isinstance(shown, Table) else _figure_div(shown, f"figure-{index}")
        parts.append(f'<section><h2>{html.escape(title)}</h2><p class="how">{html.escape(how)}</p>{div}</section>')
    name = html.escape(analysis.study_name)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>sweeper report: {name}</title>'
        f"<style>{_STYLE}{TABLE_STYLE}</style>{_DRAW_SCRIPT}</head><body><h1>Study {name}</h1>{_facts(analysis)}"
        f"{''.join(parts)}<script>{get_plotlyjs()}</script></body></html>\n"
    )


def write_report(analysis: StudyAnalysis, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(analysis), encoding="utf-8")
    return path
