"""Samplers built from a study file's `sampler:` section, each driving a real two-objective study."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeper.study import PrunerSpec, SamplerSpec, SearchSpace, build_pruner, build_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = SearchSpace(
    {
        "orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]},
        "lora.lora_dropout": {"uniform": [0.0, 0.3]},
        "orpo.per_device_train_batch_size": {"choice": [4, 8, 16]},
    }
)
# Small start-up counts so that each sampler's model (not only its random start) proposes some trials.
FAST = {
    "tpe": {"n_startup_trials": 3},
    "nsga2": {"population_size": 3},
    "gp": {"n_startup_trials": 3},
    "random": {},
}
EXPECTED_TYPE = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
}


def run_two_objective_study(sampler: optuna.samplers.BaseSampler, n_trials: int = 6) -> optuna.Study:
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    for _ in range(n_trials):
        trial = study.ask()
        values = SPACE.suggest(trial)
        assert 1.0e-5 <= values["orpo.learning_rate"] <= 1.0e-2
        assert 0.0 <= values["lora.lora_dropout"] <= 0.3
        assert values["orpo.per_device_train_batch_size"] in (4, 8, 16)
        assert isinstance(trial.distributions["learning_rate"], FloatDistribution)
        assert isinstance(trial.distributions["per_device_train_batch_size"], CategoricalDistribution)
        # A smooth trade-off: a higher learning rate fits better but separates preferences less.
        study.tell(trial, [-values["orpo.learning_rate"], -values["lora.lora_dropout"] - values["orpo.learning_rate"]])
    return study


@pytest.mark.parametrize("name", ["tpe", "nsga2", "gp", "random"])
def test_each_sampler_drives_a_two_objective_study(name):
    sampler = build_sampler(SamplerSpec(name=name, seed=0, options=FAST[name]), n_objectives=2)
    assert isinstance(sampler, EXPECTED_TYPE[name])
    # GP fits are the slow part: one model-based proposal is enough to show it works with two objectives.
    n_trials = 4 if name == "gp" else 6
    study = run_two_objective_study(sampler, n_trials)
    assert len(study.trials) == n_trials and all(trial.state.is_finished() for trial in study.trials)
    assert study.best_trials  # a Pareto front exists


def test_same_seed_same_suggestions_and_an_offset_changes_them():
    spec = SamplerSpec(name="tpe", seed=7)

    def first_params(offset: int) -> list[dict]:
        return [t.params for t in run_two_objective_study(build_sampler(spec, 2, seed_offset=offset), 3).trials]

    assert first_params(0) == first_params(0)
    assert first_params(0) != first_params(1)


def test_tpe_defaults_can_be_overridden_by_options():
    sampler = build_sampler(SamplerSpec(name="tpe", options={"multivariate": False, "n_startup_trials": 2}), 2)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    run_two_objective_study(sampler, 3)


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("tpe", {"n_startup": 3}, "no option 'n_startup'"),
        ("random", {"n_startup_trials": 3}, "no option 'n_startup_trials'"),
        ("nsga2", {"population_size": "ten"}, "options.population_size"),
        ("gp", {"deterministic_objective": 1}, "options.deterministic_objective"),
        ("nsga2", {"population_size": 1}, "population_size"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(name, options, fragment):
    with pytest.raises(ValueError, match=fragment):
        SamplerSpec(name=name, options=options)


def test_unknown_sampler_name_is_rejected():
    with pytest.raises(ValueError, match="tpe"):
        SamplerSpec(name="cmaes")


def test_gp_refuses_several_objectives_on_an_optuna_without_multi_objective_gp(monkeypatch):
    monkeypatch.setattr(optuna, "__version__", "4.3.0")
    with pytest.raises(ValueError, match="Optuna >= 4.4"):
        build_sampler(SamplerSpec(name="gp"), n_objectives=2)
    assert isinstance(build_sampler(SamplerSpec(name="gp"), n_objectives=1), optuna.samplers.GPSampler)


def test_pruner_none_builds_a_no_op_pruner():
    assert isinstance(build_pruner(PrunerSpec()), optuna.pruners.NopPruner)
    with pytest.raises(ValueError):
        PrunerSpec(name="median")
