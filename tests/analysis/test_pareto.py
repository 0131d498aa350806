"""The hypervolume history, kept incrementally, equals Optuna's hypervolume of every prefix of the study."""

from __future__ import annotations

import numpy as np
import pytest

from sweeper.analysis._pareto import hypervolume_history
from sweeper.storage import compute_hypervolume


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("directions", [["minimize", "maximize"], ["minimize", "minimize", "maximize"]])
def test_the_history_is_the_hypervolume_of_every_prefix(seed, directions):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(120, len(directions)))
    values[70] = values[20]  # a repeated point adds nothing
    values[90] = values[:90].min(axis=0) * 0  # somewhere in the middle
    numbers = rng.permutation(len(values))  # trials arrive out of number order
    history = hypervolume_history(list(numbers), values.tolist(), directions)
    signs = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    ordered = values[np.argsort(numbers)] * signs
    reference = np.asarray(history.reference_point) * signs
    expected = [float(compute_hypervolume(ordered[: k + 1], reference)) for k in range(len(ordered))]
    assert history.values == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert history.trial_numbers == sorted(numbers.tolist())
