"""What to change next: for each trial labelled overfit or underfit, the one-parameter move the surrogate predicts
helps most, with the predicted change and its interval, beside what the practitioner's notes would say.

An overfit trial's problem is its generalization gap, an underfit trial's its training loss (bias). For each
numeric parameter, the trial's own configuration is moved along that parameter to `CANDIDATES` values across the
studied range (never outside it), and the Gaussian-process surrogates of `_shapes.py` (one per target) give the
joint posterior of the target at the trial's configuration and at each moved one: the difference is the predicted
change, with a 90% interval from `POSTERIOR_DRAWS` draws. The advice is the move with the largest predicted
improvement whose interval excludes 0 (none when no move is that clear); the objectives' predicted changes at that
move are reported beside it, so a move that closes the gap at the price of an objective says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._claims import CLAIMS
from ._data import GAP, OVERFIT, TRAIN_LOSS, UNDERFIT, Advice
from ._shapes import POSTERIOR_DRAWS, ParameterAxis, SurrogateFits, scaled_features, surrogate_rows

CANDIDATES = 9


def _notes_direction(parameter: str, label: str) -> int | None:
    """+1 raise, -1 lower: what the notes advise against `label` for this parameter, None if no claim covers it."""
    for claim in CLAIMS:
        if parameter in claim.parameter_names or parameter.split(".")[-1] in claim.parameter_names:
            against_overfitting = -1 if claim.high_overfits else 1
            return against_overfitting if label == OVERFIT else -against_overfitting
    return None


def advise(
    axes: Sequence[ParameterAxis],
    rows: Sequence[Mapping[str, float]],
    labels: Mapping[int, str],
    targets: Mapping[str, Mapping[int, float]],
    objectives: Mapping[str, bool],
    numbers: Sequence[int],
    seed: int = 0,
    fits: SurrogateFits | None = None,
) -> list[Advice]:
    """`rows[i]` holds trial `numbers[i]`'s parameter values; `targets[name][number]` its value of each target
    (GAP, TRAIN_LOSS and the objectives, `objectives[name]` True when maximised)."""
    if not axes or len(numbers) < 8:
        return []
    raw = np.array([[row[axis.name] for axis in axes] for row in rows], dtype=float)
    features = scaled_features(raw, axes)
    scaled = features.values
    fits = fits or SurrogateFits()
    models = {}
    for name, values in targets.items():
        usable = [index for index, number in enumerate(numbers) if number in values]
        usable = [usable[row] for row in surrogate_rows(len(usable), seed)]  # a GP fit grows with their cube
        ys = np.array([values[numbers[index]] for index in usable], dtype=float)
        if len(usable) >= 8 and np.ptp(ys) > 0:
            models[name] = fits.fit(scaled[usable], ys, seed)
    generator = np.random.default_rng(seed)
    advice = []
    for index, number in enumerate(numbers):
        label = labels.get(number)
        if label not in (OVERFIT, UNDERFIT):
            continue
        target = GAP if label == OVERFIT else TRAIN_LOSS
        if target not in models:
            continue
        moves = []  # (parameter index, candidate scaled value)
        points = [scaled[index]]
        for column in range(len(axes)):
            for value in np.linspace(0.0, 1.0, CANDIDATES):
                if abs(value - scaled[index, column]) < 1e-9:
                    continue
                moved = scaled[index].copy()
                moved[column] = value
                moves.append((column, value))
                points.append(moved)
        points = np.array(points)

        def changes(name: str) -> np.ndarray:
            mean, cov = models[name].predict(points, return_cov=True)
            cov = (cov + cov.T) / 2 + np.eye(len(points)) * 1e-12
            draws = generator.multivariate_normal(mean, cov, size=POSTERIOR_DRAWS, method="eigh")
            return draws[:, 1:] - draws[:, :1]  # draws x moves: moved minus current

        target_changes = changes(target)
        mean = target_changes.mean(axis=0)
        high = np.quantile(target_changes, 0.95, axis=0)
        clear = np.where(high < 0)[0]
        if len(clear) == 0:
            advice.append(Advice(number, label, target, None, None, None, None, None, None,
                                 text=f"trial {number} ({label}): no single-parameter move clearly lowers the {target}"))
            continue
        best = clear[np.argmin(mean[clear])]
        column, value = moves[best]
        axis = axes[column]
        suggested = features.unscale(value, column)
        current = float(raw[index, column])
        low = float(np.quantile(target_changes[:, best], 0.05))
        predicted = {}
        for name in objectives:
            if name in models:
                objective_changes = changes(name)[:, best]
                predicted[name] = [float(objective_changes.mean()), float(np.quantile(objective_changes, 0.05)),
                                   float(np.quantile(objective_changes, 0.95))]
        notes = _notes_direction(axis.name, label)
        direction = 1 if suggested > current else -1
        agrees = None if notes is None else notes == direction
        beside = "" if agrees is None else (" (as the notes advise)" if agrees else " (the notes advise the opposite)")
        effects = "; ".join(f"{name} {m:+.3g} [{lo:+.3g}, {hi:+.3g}]" for name, (m, lo, hi) in predicted.items())
        advice.append(Advice(
            number, label, target, axis.name, current, suggested, float(mean[best]), low, float(high[best]),
            predicted, agrees,
            f"trial {number} ({label}): {'raise' if direction > 0 else 'lower'} {axis.name} from {current:.3g} to "
            f"{suggested:.3g}{beside}: predicted {target} {mean[best]:+.3g} [{low:+.3g}, {high[best]:+.3g}]"
            + (f"; {effects}" if effects else ""),
        ))
    return advice
