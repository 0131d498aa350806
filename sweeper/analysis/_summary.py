"""The answer first: a few sentences of what a study found, for the top of the report and of `sweeper analyze`.

Only what the analysis measured is said: the fit labels counted, the effects whose shape the surrogate's draws agree
on (strongest first, by how much the target moves over the range), and each claim's verdict, per side of an
optimum where there is one.
"""

from __future__ import annotations

from collections import Counter

from ._data import GAP, TRAIN_LOSS, StudyAnalysis
from ._shapes import DECREASING, INCREASING, OPTIMUM_INSIDE, describe_shape

MAX_EFFECTS = 6


def _size(effect) -> float:
    span = max(effect.mean) - min(effect.mean)
    return span / effect.tolerance if effect.tolerance else span


def what_we_learned(analysis: StudyAnalysis) -> list[str]:
    lines = []
    completed = analysis.completed
    labels = Counter(trial.fit.label for trial in completed if trial.fit and trial.fit.label)
    pareto = analysis.pareto_numbers
    lines.append(
        f"{len(completed)} completed trials: {labels.get('overfit', 0)} overfit, {labels.get('balanced', 0)} balanced, "
        f"{labels.get('underfit', 0)} underfit; Pareto front: {len(pareto)} trial{'s' if len(pareto) != 1 else ''}"
        + (f" (#{', #'.join(map(str, pareto))})" if pareto else "")
    )
    shaped = [e for e in analysis.effects if e.shape in (INCREASING, DECREASING, OPTIMUM_INSIDE)]
    order = {GAP: 0, TRAIN_LOSS: 1}
    shaped.sort(key=lambda e: (order.get(e.target, 2), -_size(e)))
    for effect in shaped[:MAX_EFFECTS]:
        lines.append(f"effect: {describe_shape(effect)}")
    moves = Counter(
        (a.label, a.parameter, "raise" if a.suggested > a.current else "lower", a.notes_agree)
        for a in analysis.advice if a.parameter is not None
    )
    for (label, parameter, verb, agrees), count in moves.most_common(3):
        of = sum(1 for a in analysis.advice if a.label == label)
        beside = "" if agrees is None else (", as the notes advise" if agrees else ", against the notes")
        lines.append(f"advice for {count} of {of} {label} trials: {verb} {parameter}{beside}")
    for claim in analysis.claims:
        if claim.parameter is None:
            continue
        sides = "".join(f"; {side.side} {side.split:.3g}: {side.verdict}" for side in claim.sides)
        lines.append(f"the practitioner's claim on {claim.hyperparameter} ({claim.prediction}): {claim.verdict}{sides}")
    return lines
