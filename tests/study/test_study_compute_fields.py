"""A study can fix or sweep the `compute:` section like any other training-config field."""

from __future__ import annotations

import optuna
import pytest
import yaml

from sweeper.config import ConfigError
from sweeper.study import load_study_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tmp_path, fixed: dict, space: dict):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"orpo": {"learning_rate": 1.0e-3}}), encoding="utf-8")
    study = {
        "study_name": "compute-study",
        "base_config": "base.yaml",
        "fixed": fixed,
        "space": {"orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]}, **space},
        "objectives": [{"name": "eval_nll_loss", "direction": "minimize"}],
        "n_trials": 2,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def test_a_study_sweeps_the_lean_forward_and_fixes_the_chunk_size(tmp_path):
    spec = load_study_spec(
        _study(tmp_path, {"compute.logit_chunk_tokens": 256}, {"compute.lean_orpo_forward": {"choice": [True, False]}})
    )
    assert spec.space.distributions()["lean_orpo_forward"].choices == (True, False)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(8):
        trial = study.ask()
        spec.space.suggest(trial)
        config = spec.training_config(trial.params)
        assert config.compute.logit_chunk_tokens == 256
        seen.add(config.compute.lean_orpo_forward)
        study.tell(trial, 0.0)
    assert seen == {True, False}


def test_a_misspelt_compute_field_is_refused_with_the_nearest_name(tmp_path):
    with pytest.raises(ConfigError, match="compute.lean_orpo_forward"):
        load_study_spec(_study(tmp_path, {"compute.lean_orpo_foward": True}, {}))
