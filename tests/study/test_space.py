"""The search-space grammar, checked against real Optuna trials (in-memory studies, ask/tell)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from sweeper.study import SearchSpace, SpaceError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def ask_many(space: SearchSpace, n: int = 20) -> list[tuple[optuna.Trial, dict]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    asked = []
    for _ in range(n):
        trial = study.ask()
        asked.append((trial, space.suggest(trial)))
    return asked


def test_log_uniform_samples_floats_on_a_log_scale_within_bounds():
    space = SearchSpace({"orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]}})
    for trial, values in ask_many(space):
        assert isinstance(values["orpo.learning_rate"], float)
        assert 1.0e-5 <= values["orpo.learning_rate"] <= 1.0e-2
        assert trial.distributions["learning_rate"] == FloatDistribution(1.0e-5, 1.0e-2, log=True)


def test_uniform_with_and_without_step():
    space = SearchSpace(
        {"lora.lora_dropout": {"uniform": [0, 0.3]}, "orpo.weight_decay": {"uniform": [0.0, 0.1], "step": 0.05}}
    )
    for trial, values in ask_many(space):
        assert 0.0 <= values["lora.lora_dropout"] <= 0.3
        assert any(values["orpo.weight_decay"] == pytest.approx(grid) for grid in (0.0, 0.05, 0.1))
        assert trial.distributions["lora_dropout"] == FloatDistribution(0.0, 0.3)
        assert trial.distributions["weight_decay"] == FloatDistribution(0.0, 0.1, step=0.05)


def test_int_with_step_and_with_log():
    space = SearchSpace({"lora.r": {"int": [4, 32], "step": 4}, "orpo.eval_steps": {"int": [1, 64], "log": True}})
    for trial, values in ask_many(space):
        assert type(values["lora.r"]) is int and values["lora.r"] % 4 == 0 and 4 <= values["lora.r"] <= 32
        assert type(values["orpo.eval_steps"]) is int and 1 <= values["orpo.eval_steps"] <= 64
        assert trial.distributions["r"] == IntDistribution(4, 32, step=4)
        assert trial.distributions["eval_steps"] == IntDistribution(1, 64, log=True)


def test_choice_samples_only_listed_values():
    space = SearchSpace(
        {"orpo.per_device_train_batch_size": {"choice": [4, 8, 16]}, "data.max_eval_rows": {"choice": [None, 64]}}
    )
    seen = set()
    for trial, values in ask_many(space, 30):
        seen.add(values["orpo.per_device_train_batch_size"])
        assert values["data.max_eval_rows"] in (None, 64)
        assert isinstance(trial.distributions["per_device_train_batch_size"], CategoricalDistribution)
    assert seen == {4, 8, 16}


def test_bare_values_are_fixed_and_not_optuna_params():
    space = SearchSpace({"lora.target_modules": ["q_proj", "v_proj"], "orpo.beta": 0.2, "lora.r": {"int": [2, 4]}})
    trial, values = ask_many(space, 1)[0]
    assert values["lora.target_modules"] == ["q_proj", "v_proj"] and values["orpo.beta"] == 0.2
    assert set(trial.params) == {"r"}
    assert space.searched_paths == ["lora.r"]
    assert set(space.distributions()) == {"r"}


def test_param_names_use_the_last_segment_unless_two_paths_share_it():
    space = SearchSpace(
        {"orpo.learning_rate": {"log_uniform": [1e-4, 1e-2]}, "orpo.seed": {"int": [0, 3]}, "seed": {"int": [0, 3]}}
    )
    assert space.param_name("orpo.learning_rate") == "learning_rate"
    assert space.param_name("orpo.seed") == "orpo.seed" and space.param_name("seed") == "seed"
    for path in space.paths:
        assert space.path_of(space.param_name(path)) == path


def test_overrides_from_params_round_trips_a_finished_trial():
    space = SearchSpace(
        {
            "orpo.learning_rate": {"log_uniform": [1e-4, 1e-2]},
            "orpo.per_device_train_batch_size": {"choice": [4, 8]},
            "orpo.beta": 0.3,
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    suggested = space.suggest(trial)
    study.tell(trial, 1.0)
    assert space.overrides_from_params(study.trials[0].params) == suggested
    with pytest.raises(KeyError, match="not_a_param"):
        space.overrides_from_params({"not_a_param": 1})


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"loguniform": [1e-5, 1e-2]}, "names no search form"),
        ({"uniform": [0.0, 1.0], "choice": [1, 2]}, "two search forms"),
        ({"log_uniform": [1e-5, 1e-2], "step": 1e-5}, "does not take step"),
        ({"uniform": [0.0, 1.0], "log": True}, "does not take log"),
        ({"uniform": [0.5, 0.1]}, "empty or inverted"),
        ({"uniform": [0.1, 0.1]}, "empty or inverted"),
        ({"int": [8, 2]}, "empty or inverted"),
        ({"log_uniform": [0.0, 1.0]}, "above 0"),
        ({"log_uniform": [-1.0, 1.0]}, "above 0"),
        ({"int": [0, 8], "log": True}, "above 0"),
        ({"uniform": ["low", 1.0]}, "must be a number"),
        ({"log_uniform": ["1e-5", 1.0e-2]}, "without quotes"),
        ({"uniform": [True, 1.0]}, "must be a number"),
        ({"int": [1.5, 4]}, "must be an integer"),
        ({"uniform": [0.0, 1.0, 2.0]}, "[low, high]"),
        ({"uniform": 0.5}, "[low, high]"),
        ({"uniform": [0.0, 1.0], "step": -0.1}, "step must be above 0"),
        ({"uniform": [0.0, 1.0], "step": 0.3}, "set high to 0.9"),
        ({"int": [1, 10], "step": 4}, "set high to 9"),
        ({"int": [1, 8], "log": True, "step": 2}, "not both"),
        ({"int": [1, 8], "log": "yes"}, "true or false"),
        ({"choice": []}, "non-empty list"),
        ({"choice": 4}, "non-empty list"),
        ({"choice": ["8", 16]}, "mixes"),
        ({"choice": [True, 1]}, "mixes"),
        ({"choice": [[1, 2], [3]]}, "must be scalars"),
        ({"choice": [4, 4, 8]}, "more than once"),
    ],
)
def test_bad_forms_are_rejected_naming_path_value_and_fix(entry, fragment):
    with pytest.raises(SpaceError) as caught:
        SearchSpace({"orpo.some_param": entry})
    message = str(caught.value)
    assert "orpo.some_param" in message
    assert fragment in message
    assert "Fix:" in message
