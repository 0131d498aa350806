"""The sampler's cost per suggestion: the GP sampler's fast path is installed, and a worker says once when
suggesting costs more than a set share of a trial's training."""

from __future__ import annotations

from sweeper.sweep._objective import SAMPLER_SHARE_WARNED, sampler_cost_warning


def test_the_gp_sampler_has_its_batched_fast_path():
    # without greenlet Optuna's GP sampler warns at every suggestion and optimises its acquisition one start at a time
    from optuna._gp import batched_lbfgsb

    assert batched_lbfgsb._greenlet_imports.is_successful()


def test_a_suggestion_costing_more_than_the_set_share_of_training_is_named_with_the_fix():
    runtime_s = 10.0
    assert sampler_cost_warning("gp", SAMPLER_SHARE_WARNED * runtime_s * 0.9, runtime_s, 7) is None
    warning = sampler_cost_warning("gp", 6.0, runtime_s, 812)
    assert "gp sampler took 6.0 s to suggest trial 812, 60% of its training (10.0 s)" in warning
    assert "sampler: {name: tpe}" in warning
