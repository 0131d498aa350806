"""Replicates: the top Pareto trial re-run with other seeds, stored in the companion study linked to its source,
and the analysis' seed-to-seed spread before and after."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.analysis import GAP, analyze_study
from sweeper.cli import main
from sweeper.storage import CurveStore, TrialRecord, replicates_study_name
from sweeper.study import load_study_spec
from sweeper.sweep import run_worker

pytestmark = pytest.mark.integration


def test_replicates_are_stored_linked_and_set_the_spread(write_fast_study, unique_name, capsys):
    study_file = write_fast_study(n_trials=1)
    spec = load_study_spec(study_file)
    run_worker(spec, show_progress=False)
    before = analyze_study(spec.study_name, spec.storage)
    assert before.seed_spread.groups == [] and set(before.seed_spread.pooled_sd.values()) == {None}
    assert all(c.seed_sd is None for c in before.correlations)
    source = before.pareto_trials[0]

    assert main(["replicate", str(study_file), "--top", "1", "--seeds", "1"]) == 0
    assert f"study {unique_name}.replicates: 1 replicate run(s)" in capsys.readouterr().out

    companion = optuna.load_study(study_name=replicates_study_name(spec.study_name), storage=spec.storage)
    replicates = companion.get_trials(states=(TrialState.COMPLETE,))
    assert [TrialRecord.of(t).replicate_seed for t in replicates] == [1]  # the source ran with seed 0
    for trial in replicates:
        assert TrialRecord.of(trial).replicate_of == source.number
        config = trial.user_attrs["training_config"]
        assert config["seed"] == TrialRecord.of(trial).replicate_seed
        assert {**config, "seed": 0} == source.training_config  # only the seed differs
        assert trial.values != list(source.values.values())  # another seed, another run
    with CurveStore(spec.storage) as curves:
        assert {row["trial_number"] for row in curves.read(companion.study_name)} == {t.number for t in replicates}
    assert len(optuna.load_study(study_name=spec.study_name, storage=spec.storage).trials) == 1  # source untouched

    after = analyze_study(spec.study_name, spec.storage)
    (group,) = after.seed_spread.groups
    assert group.source_trial == source.number and group.seeds == [0, 1]
    assert group.trial_numbers == sorted(t.number for t in replicates)
    objective = spec.objective_names[0]
    runs = [source.values[objective], *(t.values[0] for t in replicates)]
    assert group.sd[objective] == pytest.approx(abs(runs[0] - runs[1]) / math.sqrt(2))  # sample SD of two runs
    assert after.seed_spread.pooled_sd[objective] == pytest.approx(group.sd[objective])  # one group: pooled = its SD
    assert after.seed_spread.pooled_sd[GAP] > 0
    assert all(c.seed_sd == after.seed_spread.pooled_sd[c.target] for c in after.correlations)
    assert all(claim.gap_seed_sd == after.seed_spread.pooled_sd[GAP] for claim in after.claims)

    # run again: every (trial, seed) pair is done, so nothing new runs
    assert main(["replicate", str(study_file), "--top", "1", "--seeds", "1"]) == 0
    assert len(companion.get_trials()) == 1


def test_replicate_needs_a_stored_study(write_fast_study, unique_name, capsys):
    study_file = write_fast_study()
    optuna.create_study(study_name="another", storage=load_study_spec(study_file).storage)  # the storage exists
    assert main(["replicate", str(study_file), "--top", "1", "--seeds", "1"]) == 2
    assert f"no study {unique_name!r}" in capsys.readouterr().err
