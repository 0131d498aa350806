"""Study files: a valid one loads in full; every kind of mistake fails on reading, naming file, path and fix."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
import yaml

from sweeper.config import ConfigError, TrainingConfig
from sweeper.study import StudySpec, load_study_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).parents[2]
BASE_CONFIG = {"orpo": {"learning_rate": 1.0e-3, "beta": 0.1}, "lora": {"r": 4}}
STUDY = {
    "study_name": "test-study",
    "base_config": "../configs/base.yaml",
    "fixed": {"orpo.num_train_epochs": 2},
    "space": {
        "orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]},
        "orpo.per_device_train_batch_size": {"choice": [4, 8, 16]},
        "lora.lora_dropout": {"uniform": [0.0, 0.3]},
        "lora.r": {"int": [2, 16], "step": 2},
        "orpo.beta": {"log_uniform": [0.01, 1.0]},
        "lora.target_modules": ["q_proj", "v_proj"],
    },
    "objectives": [{"name": "eval_nll_loss", "direction": "minimize"}, {"name": "eval_logp_margin"}],
    "sampler": {"name": "tpe", "seed": 0},
    "pruner": {"name": "none"},
    "n_trials": 5,
    "timeout_s": None,
    "storage": "sqlite:///runs/test-study.db",
}


@pytest.fixture
def write_study(tmp_path):
    """Writes configs/base.yaml and studies/<name>.yaml under tmp_path; returns the study file's path."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "studies").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text(yaml.safe_dump(BASE_CONFIG), encoding="utf-8")

    def write(data: dict, name: str = "mine.yaml") -> Path:
        path = tmp_path / "studies" / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


def test_the_base_config_is_read_once_so_an_edit_during_a_sweep_changes_no_trial(write_study, tmp_path):
    spec = load_study_spec(write_study(STUDY))
    params = {"per_device_train_batch_size": 8}
    assert spec.training_config(params).lora.r == 4
    edited = {**BASE_CONFIG, "lora": {"r": 64}}  # the user edits the file while the workers run
    (tmp_path / "configs" / "base.yaml").write_text(yaml.safe_dump(edited), encoding="utf-8")
    assert spec.training_config(params).lora.r == 4  # the worker's trials stay on what its input check saw
    assert load_study_spec(write_study(STUDY)).training_config(params).lora.r == 64  # a new command reads it anew


def test_a_study_with_another_base_builds_on_it_without_the_fixed_values(write_study):
    spec = load_study_spec(write_study(STUDY))
    stored = spec.training_config({}).model_dump(mode="json")
    replicate = spec.with_base({**stored, "seed": 7})
    assert replicate.training_config({}).seed == 7 and replicate.fixed == {}
    assert spec.training_config({}).seed == stored["seed"]  # the original is untouched


def test_a_valid_study_file_loads_in_full(write_study, tmp_path):
    spec = load_study_spec(write_study(STUDY))
    assert spec.base_config == (tmp_path / "configs" / "base.yaml").resolve() and spec.base_config.is_absolute()
    assert spec.directions == ["minimize", "maximize"]  # a missing direction takes the objective's own
    assert spec.objective_names == ["eval_nll_loss", "eval_logp_margin"]
    assert spec.sampler.name == "tpe" and spec.pruner.name == "none" and spec.n_trials == 5
    assert set(spec.distributions()) == {"learning_rate", "per_device_train_batch_size", "lora_dropout", "r", "beta"}


def test_cli_flags_replace_n_trials_and_storage(write_study):
    spec = load_study_spec(write_study(STUDY), n_trials=2, storage="postgresql://u@host/db")
    assert spec.n_trials == 2 and spec.storage == "postgresql://u@host/db"


def test_storage_defaults_to_a_sqlite_file_named_after_the_study(write_study):
    data = {key: value for key, value in STUDY.items() if key != "storage"}
    assert load_study_spec(write_study(data)).storage == "sqlite:///runs/test-study.db"


def test_exponents_without_a_decimal_point_read_as_numbers(write_study):
    path = write_study(STUDY)
    text = path.read_text(encoding="utf-8")
    assert "- 1.0e-05" in text  # the learning rate's low bound, as PyYAML writes it
    path.write_text(text.replace("- 1.0e-05", "- 1e-5"), encoding="utf-8")
    assert load_study_spec(path).space.distributions()["learning_rate"].low == 1.0e-5


def test_timeout_alone_is_enough(write_study):
    spec = load_study_spec(write_study({**STUDY, "n_trials": None, "timeout_s": 600}))
    assert spec.n_trials is None and spec.timeout_s == 600


def test_asked_trials_become_valid_training_configs(write_study):
    spec = load_study_spec(write_study(STUDY))
    study = optuna.create_study(directions=spec.directions, sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        suggested = spec.space.suggest(trial)
        overrides = spec.training_overrides(trial.params)
        assert overrides == {"orpo.num_train_epochs": 2, **suggested}
        config = spec.training_config(trial.params)
        assert isinstance(config, TrainingConfig)
        assert config.orpo.learning_rate == suggested["orpo.learning_rate"]
        assert config.orpo.num_train_epochs == 2 and config.lora.target_modules == ["q_proj", "v_proj"]
        assert config.lora.r % 2 == 0


def test_a_spec_dumps_to_data_that_loads_back_equal(write_study):
    spec = load_study_spec(write_study(STUDY))
    assert StudySpec.from_mapping(spec.model_dump(mode="json")) == spec


def with_changes(changes: dict) -> dict:
    """STUDY with top-level keys replaced; a value of ... removes the key; `space.` keys edit the space."""
    data = copy.deepcopy(STUDY)
    for key, value in changes.items():
        section, _, path = key.partition(".")
        target = data[section] if section in ("space", "fixed") and path else data
        name = path if target is not data else key
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
    return data


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"space.orpo.learning_rat": {"uniform": [1e-5, 1e-2]}}, ["learning_rat", "did you mean orpo.learning_rate"]),
        ({"space.orpo": {"choice": [1, 2]}}, ["orpo", "is a section"]),
        ({"space.orpo.beta.scale": 2}, ["orpo.beta.scale", "is a value, not a section"]),
        ({"space.lora.lora_dropout": {"uniform": [0.0, 1.5]}}, ["lora.lora_dropout", "bound 1.5", "Fix"]),
        ({"space.orpo.per_device_train_batch_size": {"choice": [0, 8]}}, ["per_device_train_batch_size", "choice 0"]),
        ({"space.lora.lora_dropout": 2.0}, ["lora.lora_dropout", "value 2.0"]),
        ({"space.lora.bias": {"choice": ["none", "some"]}}, ["lora.bias", "'some'"]),
        ({"space.lora.r": {"uniform": [2, 16]}}, ["lora.r", "integer field", "{int: [low, high]}"]),
        ({"space.orpo.learning_rate": {"log_uniform": [0.0, 1e-2]}}, ["orpo.learning_rate", "above 0"]),
        ({"space.orpo.learning_rate": {"uniform": [1e-2, 1e-5]}}, ["orpo.learning_rate", "inverted"]),
        ({"space.orpo.learning_rate": {"log_uniform": ["tiny", 1.0e-2]}}, ["orpo.learning_rate", "'tiny'", "number"]),
        ({"space.orpo.learning_rate": {"loguniform": [1e-5, 1e-2]}}, ["orpo.learning_rate", "no search form"]),
        ({"space.orpo.learning_rate": {"uniform": [1e-5, 1e-2], "choice": [1e-3]}}, ["orpo.learning_rate", "two"]),
        ({"space.orpo.per_device_train_batch_size": {"choice": []}}, ["per_device_train_batch_size", "non-empty"]),
        ({"space": {}}, ["space", "Fix"]),
        ({"fixed.orpo.beta": 0.2}, ["orpo.beta", "both `fixed` and `space`"]),
        ({"fixed.orpo.num_train_epoch": 2}, ["fixed", "orpo.num_train_epoch", "did you mean orpo.num_train_epochs"]),
        ({"fixed.orpo.num_train_epochs": -1}, ["fixed", "orpo.num_train_epochs", "-1"]),
        ({"objectives": [{"name": "eval_accuracy"}]}, ["eval_accuracy", "known objectives", "eval_nll_loss"]),
        ({"objectives": [{"name": "eval_nll_loss", "direction": "minimise"}]}, ["direction", "minimize"]),
        ({"objectives": [{"name": "eval_nll_loss", "direction": "maximize"}]}, ["eval_nll_loss", "must minimize"]),
        ({"objectives": [{"name": "eval_nll_loss"}, {"name": "eval_nll_loss"}]}, ["eval_nll_loss", "more than once"]),
        ({"objectives": []}, ["objectives", "at least one"]),
        ({"sampler": {"name": "cmaes"}}, ["sampler.name", "'cmaes'", "'tpe'"]),
        ({"sampler": {"name": "tpe", "options": {"n_startup": 3}}}, ["sampler", "n_startup", "n_startup_trials"]),
        ({"pruner": {"name": "median"}}, ["pruner.name", "'median'"]),
        ({"n_trials": 0}, ["n_trials", "at least 1"]),
        ({"n_trials": -3}, ["n_trials", "at least 1"]),
        ({"n_trials": None}, ["neither n_trials nor timeout_s"]),
        ({"n_trials": ...}, ["neither n_trials nor timeout_s"]),
        ({"timeout_s": 0}, ["timeout_s", "above 0"]),
        ({"storage": "runs/test.db"}, ["storage", "sqlite:///"]),
        ({"study_name": "my study!"}, ["study_name", "letters"]),
        ({"base_config": "../configs/missing.yaml"}, ["base_config", "missing.yaml", "file not found"]),
        ({"seed": 3}, ["seed", "unknown key"]),
    ],
)
def test_mistakes_fail_on_reading_naming_file_path_and_fix(write_study, changes, fragments):
    path = write_study(with_changes(changes))
    with pytest.raises(ConfigError) as caught:
        load_study_spec(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_base_config_that_does_not_validate_is_reported(write_study, tmp_path):
    path = write_study(STUDY)
    (tmp_path / "configs" / "base.yaml").write_text("orpo: {learning_rate: -1.0}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="base_config.*orpo.learning_rate"):
        load_study_spec(path)


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_study_files_load(path):
    base = (path.parent / yaml.safe_load(path.read_text(encoding="utf-8"))["base_config"]).resolve()
    if not base.is_file():
        pytest.skip(f"{base.name} is not written yet")
    spec = load_study_spec(path)
    assert spec.n_trials and spec.storage.startswith("sqlite:///runs/")
    study = optuna.create_study(directions=spec.directions)
    spec.training_config(study.ask(spec.distributions()).params)
