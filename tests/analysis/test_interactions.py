"""Pairwise interactions from the effect-shape surrogate: a planted interaction is found and sized, an additive
structure shows none above noise, and a study's analysis and report carry them."""

from __future__ import annotations

import numpy as np
import pytest

from sweeper.analysis import GAP, analyze_study, describe_interaction
from sweeper.analysis._shapes import ParameterAxis, shapes_and_interactions

AXES = [ParameterAxis(f"p{i}", False) for i in range(4)]


def _sample(seed: int, n: int = 48):
    rng = np.random.default_rng(seed)
    features = rng.uniform(0, 1, (n, len(AXES)))
    return rng, features, {axis.name: features[:, index] for index, axis in enumerate(AXES)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_interaction_is_the_strongest_pair_and_additive_effects_show_none(seed):
    rng, x, values = _sample(seed)
    targets = {
        "product": 4 * (x[:, 0] - 0.5) * (x[:, 1] - 0.5) + x[:, 2] + rng.normal(0, 0.03, len(x)),
        "additive": x[:, 0] + 2 * x[:, 2] + rng.normal(0, 0.03, len(x)),
    }
    _, interactions = shapes_and_interactions(AXES, values, targets, {"product": False, "additive": False}, seed=seed)
    product = [pair for pair in interactions if pair.target == "product"]
    assert len(product) == 6  # every pair of four parameters
    strongest = product[0]
    assert (strongest.first, strongest.second) == ("p0", "p1") and strongest.called
    assert strongest.h2 > 0.5 and strongest.size > 3 * strongest.tolerance
    assert not any(pair.called for pair in product[1:])
    assert not any(pair.called for pair in interactions if pair.target == "additive")
    surface = np.array(strongest.surface)
    assert surface.shape == (10, 10)
    # the planted saddle: high where both are high or both low, low on the off-diagonal corners
    assert surface[0, 0] > surface[0, -1] and surface[-1, -1] > surface[-1, 0]


def test_the_known_study_plants_no_interaction_on_the_gap(known_analysis):
    """tests/_known_study.py: gap = 0.1 + 0.6 u - 0.3 b, additive in the learning rate and beta."""
    analysis = known_analysis
    on_gap = [pair for pair in analysis.interactions if pair.target == GAP]
    assert on_gap and not any(pair.called for pair in on_gap), [describe_interaction(p) for p in on_gap if p.called]
    assert "interactions" in analysis.to_dict()


def _interacting_gap(u: float, b: float, rng) -> tuple[float, float]:
    """The learning rate widens the gap at low beta and narrows it at high beta."""
    return 4.0 - 2.0 * u + rng.normal(0, 0.01), 0.4 + 1.2 * (u - 0.5) * (0.5 - b) * 2 + rng.normal(0, 0.01)


def test_a_planted_learning_rate_x_beta_interaction_on_the_gap_is_found_and_drawn(tmp_path):
    from _known_study import build_known_study

    from sweeper.report import render_report

    url = f"sqlite:///{tmp_path / 'interacting.db'}"
    build_known_study(url, "interacting", losses=_interacting_gap)
    analysis = analyze_study("interacting", url)
    on_gap = [pair for pair in analysis.interactions if pair.target == GAP and pair.called]
    assert on_gap and {on_gap[0].first, on_gap[0].second} == {"learning_rate", "beta"}, [
        describe_interaction(p) for p in on_gap]
    html = render_report(analysis)
    assert "Interactions" in html and "interaction above noise" in html
