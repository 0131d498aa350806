"""The study file's `pruner:` section, and every sampler driving a two-objective study that holds PRUNED trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweeper.config import ConfigError
from sweeper.study import PrunerSpec, SamplerSpec, SearchSpace, build_pruner, build_sampler, load_study_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = Path(__file__).parents[2]


def _study_file(tmp_path: Path, pruner) -> Path:
    study = {
        "study_name": "pruned",
        "base_config": str(REPO / "configs" / "tiny.yaml"),
        "space": {"orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]}},
        "objectives": [{"name": "eval_nll_loss"}, {"name": "eval_logp_margin"}],
        "pruner": pruner,
        "n_trials": 4,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_a_dominated_pruner_loads_with_its_rungs_sorted_and_defaults_filled(tmp_path):
    spec = load_study_spec(_study_file(tmp_path, {"name": "dominated", "rungs": [0.5, 0.25]}))
    assert spec.pruner.enabled
    assert (spec.pruner.rungs, spec.pruner.min_peers, spec.pruner.dominated_fraction) == ([0.25, 0.5], 4, 0.5)
    steps = load_study_spec(_study_file(tmp_path, {"name": "dominated", "rungs": [40, 20], "min_peers": 2}))
    assert steps.pruner.rungs == [20, 40] and all(isinstance(rung, int) for rung in steps.pruner.rungs)
    assert not load_study_spec(_study_file(tmp_path, {"name": "none"})).pruner.enabled
    assert isinstance(build_pruner(spec.pruner), optuna.pruners.NopPruner)  # Optuna's own pruner stays out


def test_asha_and_multi_metric_load_with_their_default_rungs():
    asha = PrunerSpec(name="asha")
    assert (asha.reduction_factor, asha.rungs) == (3, [0.1111, 0.3333])  # 3^-2 and 3^-1 of the schedule
    assert PrunerSpec(name="asha", reduction_factor=2).rungs == [0.25, 0.5]
    assert PrunerSpec(name="asha", rungs=[8, 24]).rungs == [8, 24]
    multi = PrunerSpec(name="multi_metric")
    assert (multi.rungs, multi.min_peers) == ([0.25, 0.5], 4)


@pytest.mark.parametrize(
    ("pruner", "fragment"),
    [
        ({"name": "median"}, "pruner.name: Input should be 'none', 'dominated', 'asha' or 'multi_metric'"),
        ({"name": "dominated"}, "the dominated pruner needs at least one rung"),
        ({"name": "dominated", "rungs": []}, "the dominated pruner needs at least one rung"),
        ({"name": "none", "rungs": [0.5]}, "rungs: only the dominated, asha or multi_metric pruner takes it, not none"),
        ({"name": "asha", "dominated_fraction": 0.5}, "dominated_fraction: only the dominated pruner takes it, not asha"),
        ({"name": "dominated", "rungs": [0.5], "reduction_factor": 3}, "reduction_factor: only the asha pruner"),
        ({"name": "asha", "reduction_factor": 1}, "reduction_factor: 1 must be a whole number >= 2"),
        ({"name": "asha", "rungs": [0.5, 20]}, "mixes fractions of the schedule and step counts"),
        ({"name": "multi_metric", "min_peers": 0}, "min_peers: 0 must be a whole number >= 1"),
        ({"name": "dominated", "rungs": [1.0]}, "rungs: 1.0: a fraction of the schedule must lie strictly between"),
        ({"name": "dominated", "rungs": [1.5]}, "written without a decimal point"),
        ({"name": "dominated", "rungs": [0]}, "rungs: 0: a step count must be >= 1"),
        ({"name": "dominated", "rungs": [0.5, 20]}, "mixes fractions of the schedule and step counts"),
        ({"name": "dominated", "rungs": [0.5, 0.5]}, "lists a rung twice"),
        ({"name": "dominated", "rungs": ["half"]}, "pruner.rungs.0"),
        ({"name": "dominated", "rungs": [0.5], "min_peers": 0}, "min_peers: 0 must be a whole number >= 1"),
        ({"name": "dominated", "rungs": [0.5], "min_peers": 2.5}, "pruner.min_peers: Input should be a valid integer"),
        ({"name": "dominated", "rungs": [0.5], "dominated_fraction": 0}, "dominated_fraction: 0.0 must be above 0"),
        ({"name": "dominated", "rungs": [0.5], "dominated_fraction": 1.5}, "at most 1"),
        ({"name": "dominated", "rungs": [0.5], "patience": 3}, "pruner.patience: unknown key"),
    ],
)
def test_a_bad_pruner_section_fails_on_reading_naming_the_field_and_the_fix(tmp_path, pruner, fragment):
    path = _study_file(tmp_path, pruner)
    with pytest.raises(ConfigError) as raised:
        load_study_spec(path)
    message = str(raised.value)
    assert str(path) in message and fragment in message, message


SPACE = SearchSpace(
    {
        "orpo.learning_rate": {"log_uniform": [1.0e-5, 1.0e-2]},
        "lora.lora_dropout": {"uniform": [0.0, 0.3]},
        "orpo.per_device_train_batch_size": {"choice": [4, 8, 16]},
    }
)
FAST = {"tpe": {"n_startup_trials": 3}, "nsga2": {"population_size": 3}, "gp": {"n_startup_trials": 3}, "random": {}}


@pytest.mark.parametrize("name", ["tpe", "nsga2", "gp", "random"])
def test_each_sampler_keeps_proposing_with_pruned_trials_in_a_two_objective_study(name):
    """Optuna's TPE once failed on PRUNED multi-objective trials (optuna#5260): each sampler must go on."""
    sampler = build_sampler(SamplerSpec(name=name, seed=0, options=FAST[name]), n_objectives=2)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    for number in range(12):
        trial = study.ask()
        values = SPACE.suggest(trial)
        if number % 3 == 2:  # every third trial is stopped at a rung: PRUNED, no values
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, [-values["orpo.learning_rate"], -values["lora.lora_dropout"]])
    states = [trial.state for trial in study.trials]
    assert states.count(TrialState.PRUNED) == 4 and states.count(TrialState.COMPLETE) == 8
    for trial in study.trials:  # past each sampler's start-up trials: its own model proposed these
        assert 1.0e-5 <= trial.params["learning_rate"] <= 1.0e-2 and 0.0 <= trial.params["lora_dropout"] <= 0.3
    if name == "nsga2":  # a generation needs population_size COMPLETE trials: PRUNED ones do not stall it
        assert study.trials[-1].system_attrs["NSGAIISampler:generation"] == 2
    assert len(study.best_trials) >= 1
