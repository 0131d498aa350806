"""The pooled seed-to-seed SD, on numbers worked by hand."""

from __future__ import annotations

import math

import pytest

from sweeper.analysis import TrialRow
from sweeper.analysis._seed_spread import seed_spread


def _row(number: int, value: float, seed: int) -> TrialRow:
    return TrialRow(
        number=number, state="COMPLETE", values={"loss": value}, params={}, beta=None, effective_batch_size=None,
        seed=seed, pareto=True, fit=None, failure_reason=None, failure_detail=None, pruned_step=None, runtime_s=None,
        config_hash=None, training_config=None, library_versions=None, dataset_fingerprint=None,
    )


def test_pooled_sd_weights_groups_by_their_degrees_of_freedom():
    sources = [_row(0, 1.0, 0), _row(5, 10.0, 0), _row(7, 3.0, 0)]
    replicates = [(0, _row(0, 2.0, 1)), (0, _row(1, 3.0, 2)), (5, _row(2, 14.0, 1)), (99, _row(3, 0.0, 1))]
    spread = seed_spread("s.replicates", sources, replicates, ["loss"])
    first, second = spread.groups
    assert (first.source_trial, first.seeds, first.sd["loss"]) == (0, [0, 1, 2], pytest.approx(1.0))
    assert (second.source_trial, second.seeds, second.sd["loss"]) == (5, [0, 1], pytest.approx(math.sqrt(8)))
    # (2 x 1^2 + 1 x 8) / (2 + 1); trial 7 has no replicates, source 99 does not exist: neither counts
    assert spread.pooled_sd["loss"] == pytest.approx(math.sqrt(10 / 3))
    assert spread.n_runs == 3 and spread.pooled_sd["generalization_gap"] is None
