"""Samplers built from a study file's `sampler:` section, each driving a real two-objective study."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeper.study import PrunerSpec, SamplerSpec, SearchSpace, build_pruner, build_sampler
from sweeper.study._samplers import TrialSeededSampler, trial_seed

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
    assert isinstance(sampler, TrialSeededSampler)
    # GP fits are the slow part: one model-based proposal is enough to show it works with two objectives.
    n_trials = 4 if name == "gp" else 6
    study = run_two_objective_study(sampler, n_trials)
    assert len(study.trials) == n_trials and all(trial.state.is_finished() for trial in study.trials)
    assert study.best_trials  # a Pareto front exists
    assert isinstance(sampler._sampler, EXPECTED_TYPE[name])  # the sampler that drew the last trial


def test_same_seed_same_suggestions_and_another_seed_changes_them():
    def first_params(seed: int) -> list[dict]:
        return [t.params for t in run_two_objective_study(build_sampler(SamplerSpec(name="tpe", seed=seed), 2), 3).trials]

    assert first_params(7) == first_params(7)
    assert first_params(7) != first_params(8)


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2"])
def test_a_resumed_study_continues_its_draws_instead_of_repeating_them(name, tmp_path):
    """A process that joins a study later (a resume, a second worker) builds its sampler from the same seed; its
    trials must still be new configurations, not a replay of trials 0, 1, 2."""
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    spec = SamplerSpec(name=name, seed=0, options=FAST[name])
    study = optuna.create_study(study_name="s", storage=storage, directions=["minimize", "maximize"],
                                sampler=build_sampler(spec, 2))
    for _ in range(3):
        trial = study.ask()
        values = SPACE.suggest(trial)
        study.tell(trial, [values["orpo.learning_rate"], values["lora.lora_dropout"]])
    for _ in range(2):  # two later processes, each with a sampler built afresh from the study file
        resumed = optuna.load_study(study_name="s", storage=storage, sampler=build_sampler(spec, 2))
        trial = resumed.ask()
        values = SPACE.suggest(trial)
        resumed.tell(trial, [values["orpo.learning_rate"], values["lora.lora_dropout"]])
    params = [tuple(sorted(t.params.items())) for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert len(params) == 5 and len(set(params)) == 5, params


def test_trial_seed_depends_on_the_study_seed_and_the_trial_number():
    seeds = {trial_seed(study_seed, number) for study_seed in (0, 1) for number in range(50)}
    assert len(seeds) == 100 and all(0 <= seed < 2**32 for seed in seeds)
    assert trial_seed(3, 4) == trial_seed(3, 4)


def test_tpe_defaults_can_be_overridden_by_options():
    sampler = build_sampler(SamplerSpec(name="tpe", options={"multivariate": False, "n_startup_trials": 2}), 2)
    run_two_objective_study(sampler, 3)
    assert isinstance(sampler._sampler, optuna.samplers.TPESampler) and not sampler._sampler._multivariate


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
    assert isinstance(build_sampler(SamplerSpec(name="gp"), n_objectives=1)._sampler, optuna.samplers.GPSampler)


def test_pruner_none_builds_a_no_op_pruner():
    assert isinstance(build_pruner(PrunerSpec()), optuna.pruners.NopPruner)
    with pytest.raises(ValueError):
        PrunerSpec(name="median")
