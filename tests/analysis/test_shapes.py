"""Effect shapes from a GP surrogate's partial dependence: planted studies whose truth is known (an interior
optimum, a monotone effect, a parameter with no effect), and the known-structure study of the other tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sweeper.analysis import GAP, analyze_study
from sweeper.analysis._shapes import (
    DECREASING,
    FLAT,
    INCREASING,
    OPTIMUM_INSIDE,
    ParameterAxis,
    effect_shapes,
)

LR_LOW, LR_HIGH = -5.0, -1.5  # log10 of the learning rate's range
PLANTED_POSITION = 0.6  # where the planted loss is lowest, as a share of the log range


def _planted(seed: int, n: int = 48, noise: float = 0.05):
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(LR_LOW, LR_HIGH, n)
    dropout, decay = rng.uniform(0.0, 0.3, n), rng.uniform(0.0, 0.1, n)
    u = (np.log10(lr) - LR_LOW) / (LR_HIGH - LR_LOW)
    loss = 4 * (u - PLANTED_POSITION) ** 2 + 2.0 * dropout + rng.normal(0.0, noise, n)
    axes = [ParameterAxis("learning_rate", True), ParameterAxis("lora_dropout", False), ParameterAxis("weight_decay", False)]
    shapes = effect_shapes(axes, {"learning_rate": lr, "lora_dropout": dropout, "weight_decay": decay}, {"loss": loss},
                           {"loss": False}, seed=seed)
    return {shape.parameter: shape for shape in shapes}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_interior_optimum_is_found_with_an_interval_around_the_planted_location(seed):
    shape = _planted(seed)["learning_rate"]
    assert shape.shape == OPTIMUM_INSIDE
    planted = 10 ** (LR_LOW + PLANTED_POSITION * (LR_HIGH - LR_LOW))
    assert shape.optimum_low <= planted <= shape.optimum_high, (shape.optimum_low, planted, shape.optimum_high)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_monotone_effect_gets_its_direction_and_a_null_parameter_none(seed):
    shapes = _planted(seed)
    assert shapes["lora_dropout"].shape == INCREASING and shapes["lora_dropout"].change > 0
    assert shapes["weight_decay"].shape not in (INCREASING, DECREASING, OPTIMUM_INSIDE)


def test_a_maximised_target_has_its_optimum_at_a_maximum():
    rng = np.random.default_rng(4)
    x = rng.uniform(0.0, 1.0, 40)
    margin = -((x - 0.3) ** 2) * 5 + rng.normal(0.0, 0.02, 40)  # best (highest) at 0.3
    (shape,) = effect_shapes([ParameterAxis("beta", False)], {"beta": x}, {"margin": margin}, {"margin": True})
    assert shape.shape == OPTIMUM_INSIDE and shape.optimum_low <= 0.3 <= shape.optimum_high


def test_noise_from_replicates_raises_the_bar_for_an_effect():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.0, 30)
    y = 0.2 * x + rng.normal(0.0, 0.02, 30)
    (small_noise,) = effect_shapes([ParameterAxis("x", False)], {"x": x}, {"y": y}, {"y": False})
    (seed_noise,) = effect_shapes([ParameterAxis("x", False)], {"x": x}, {"y": y}, {"y": False}, {"y": 0.5})
    assert small_noise.shape == INCREASING and seed_noise.shape == FLAT


def test_the_known_study_shows_its_planted_shapes(known_analysis):
    analysis = known_analysis
    by_key = {(e.parameter, e.target): e for e in analysis.effects}
    # tests/_known_study.py: gap = 0.1 + 0.6 u - 0.3 b; margin = 2 x dropout / 0.3; dropout leaves the gap alone
    assert by_key[("learning_rate", GAP)].shape == INCREASING
    assert by_key[("beta", GAP)].shape == DECREASING
    assert by_key[("lora_dropout", "eval_logp_margin")].shape == INCREASING
    assert by_key[("lora_dropout", GAP)].shape == FLAT
    assert analysis.to_dict()["effects"][0]["grid"]  # in `sweeper analyze --json`


def _u_shaped_gap(u, b, rng):
    """The gap is smallest at the middle of the learning rate's range; the training loss ignores the learning rate."""
    return 3.0 + 0.3 * b + rng.normal(0, 0.01), 0.1 + 2.4 * (u - 0.5) ** 2 - 0.3 * b + rng.normal(0, 0.01)


def test_a_claim_is_judged_on_each_side_of_an_interior_optimum(tmp_path):
    from _known_study import LR_RANGE, build_known_study

    from sweeper.analysis import CONTRADICTED, SUPPORTED

    url = f"sqlite:///{tmp_path / 'u.db'}"
    build_known_study(url, "u-shaped", losses=_u_shaped_gap)
    analysis = analyze_study("u-shaped", url)
    shape = next(e for e in analysis.effects if (e.parameter, e.target) == ("learning_rate", GAP))
    middle = math.sqrt(LR_RANGE[0] * LR_RANGE[1])  # u = 0.5 on the log range
    assert shape.shape == OPTIMUM_INSIDE and shape.optimum_low <= middle <= shape.optimum_high
    claim = next(c for c in analysis.claims if c.hyperparameter == "learning rate")
    # "a high learning rate overfits": below the optimum raising it narrows the gap, above it widens it
    assert [(side.side, side.verdict) for side in claim.sides] == [("below", CONTRADICTED), ("above", SUPPORTED)]
    assert all(side.split == shape.optimum and side.n_trials >= 8 and "gap rho" in side.reason for side in claim.sides)


def test_what_we_learned_leads_with_counts_the_strongest_shapes_and_the_verdicts(known_analysis):
    from sweeper.analysis import what_we_learned

    analysis = known_analysis
    lines = what_we_learned(analysis)
    pareto = analysis.pareto_numbers
    assert lines[0].endswith(f"Pareto front: {len(pareto)} trials (#{', #'.join(map(str, pareto))})")
    assert lines[1].startswith("effect: learning_rate -> generalization_gap: increasing")  # the gap first, strongest
    assert any(line.startswith("the practitioner's claim on beta") and line.endswith("contradicted") for line in lines)


def test_advice_for_the_planted_overfit_and_underfit_trials_names_the_planted_cause(known_analysis):
    from _known_study import OVERFIT_TRIAL, UNDERFIT_TRIAL

    analysis = known_analysis
    by_trial = {item.trial: item for item in analysis.advice}
    # gap = 0.1 + 0.6 u - 0.3 b and training loss = 4 - 2 u + 0.3 b: the learning rate moves both most
    overfit, underfit = by_trial[OVERFIT_TRIAL], by_trial[UNDERFIT_TRIAL]
    assert overfit.label == "overfit" and overfit.parameter == "learning_rate" and overfit.suggested < overfit.current
    assert overfit.change_high < 0 and overfit.notes_agree is True
    assert overfit.objectives["eval_nll_loss"][0] > 0  # the price: a higher validation NLL, said beside the advice
    assert underfit.label == "underfit" and underfit.parameter == "learning_rate"
    assert underfit.suggested > underfit.current and underfit.target == "train_loss" and underfit.change_high < 0
    assert all(item.trial in {t.number for t in analysis.completed if t.fit.label in ("overfit", "underfit")}
               for item in analysis.advice)


def test_the_effective_batch_size_gets_its_own_shape(tmp_path):
    """The gap falls with micro-batch x accumulation (4 .. 32) and with neither alone: the effective batch size's
    shape, from a surrogate that holds it in place of its factors, says so."""
    from _known_study import build_known_study

    url = f"sqlite:///{tmp_path / 'batch.db'}"
    build_known_study(url, "batch", gap_from_batch=lambda effective: -0.4 * math.log2(effective / 4) / 3)
    analysis = analyze_study("batch", url)
    shape = next(e for e in analysis.effects if (e.parameter, e.target) == ("effective_batch_size", GAP))
    assert shape.shape == DECREASING and shape.change < -0.2
    assert shape.grid[0] == pytest.approx(4) and shape.grid[-1] == pytest.approx(32) and shape.log_scale


def test_the_advice_takes_each_targets_surrogate_from_the_effect_shapes(known_study, monkeypatch):
    """A GP fit is most of the shapes' and the advice's time, and the advice fits the same targets on the same
    trials: each surrogate is fitted once per analysis, and the advice is the one surrogates of its own give."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    from sweeper.analysis import _analyze

    fitted = []
    real_fit = GaussianProcessRegressor.fit

    def recorded_fit(self, features, target):
        fitted.append((features.tobytes(), np.asarray(target).tobytes()))
        return real_fit(self, features, target)

    monkeypatch.setattr(GaussianProcessRegressor, "fit", recorded_fit)
    analysis = analyze_study(*known_study)
    assert analysis.advice and analysis.effects
    assert len(set(fitted)) == len(fitted), f"{len(fitted) - len(set(fitted))} surrogates fitted twice"

    names = [objective.name for objective in analysis.objectives]
    own = _analyze._advice(
        analysis.completed, analysis.parameters, _analyze._targets(analysis.completed, names), names,
        [objective.direction for objective in analysis.objectives], seed=0,
    )
    assert own == analysis.advice


def test_surrogates_are_fitted_on_the_same_trials_by_whoever_asks():
    from sweeper.analysis._shapes import MAX_SURROGATE_TRIALS, SurrogateFits, surrogate_rows

    assert list(surrogate_rows(40, seed=0)) == list(range(40))
    drawn = surrogate_rows(MAX_SURROGATE_TRIALS + 500, seed=3)
    assert len(set(drawn)) == MAX_SURROGATE_TRIALS and list(drawn) == sorted(drawn)
    assert list(drawn) == list(surrogate_rows(MAX_SURROGATE_TRIALS + 500, seed=3))

    rng = np.random.default_rng(0)
    features, target = rng.random((12, 2)), rng.random(12)
    fits = SurrogateFits()
    model = fits.fit(features, target, seed=0)
    assert fits.fit(features.copy(), target.copy(), seed=0) is model  # equal inputs: the same surrogate
    assert fits.fit(features, target + 1.0, seed=0) is not model
    assert fits.fit(features, target, seed=1) is not model


def test_the_surrogates_kernel_gives_scikit_learns_numbers_bit_for_bit():
    """ArdKernel computes the gradient a fit asks at every step in one array, from squared differences kept for the
    fit; the same floating-point operations as scikit-learn's own kernel, so the same fit to the last bit."""
    import warnings

    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    from sweeper.analysis._ard_kernel import surrogate_kernel
    from sweeper.analysis._shapes import fit_surrogate

    rng = np.random.default_rng(5)
    features = rng.random((60, 4))
    target = np.sin(3 * features[:, 0]) + (features[:, 1] - 0.5) ** 2 + rng.normal(0.0, 0.1, 60)

    def scikit_learns_kernel():
        return ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.full(4, 0.5), (0.05, 20.0)) + WhiteKernel(0.1, (1e-6, 1.0))

    ours, theirs = surrogate_kernel(4), scikit_learns_kernel()
    for kernel in (ours, theirs):
        kernel.theta = np.log([2.0, 0.3, 0.7, 4.0, 1.5, 0.05])
    for mine, scikit_learns in zip(ours(features, eval_gradient=True), theirs(features, eval_gradient=True)):
        assert mine.shape == scikit_learns.shape and np.array_equal(mine, scikit_learns)

    fitted = fit_surrogate(features, target, seed=2)
    assert "_differences" in fitted.kernel_.__dict__  # the fit took the kernel's own gradient
    reference = GaussianProcessRegressor(scikit_learns_kernel(), normalize_y=True, n_restarts_optimizer=3,
                                         random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(features, target)
    assert np.array_equal(fitted.kernel_.theta, reference.kernel_.theta)
    assert np.array_equal(fitted.alpha_, reference.alpha_) and np.array_equal(fitted.L_, reference.L_)
    points = rng.random((9, 4))
    for mine, scikit_learns in zip(fitted.predict(points, return_cov=True), reference.predict(points, return_cov=True)):
        assert np.array_equal(mine, scikit_learns)
