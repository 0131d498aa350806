"""A packed worker (`pack: K`, `--pack K`): K trials at a time on one base model, each still a whole trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweeper.cli import main
from sweeper.config import ConfigError
from sweeper.faults import OOM_ABOVE_PACKED_BACKWARD
from sweeper.metrics import ORPO_METRICS
from sweeper.storage import CurveStore
from sweeper.study import load_study_spec


def _sweeper(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeper.cli", *args], text=True, **popen)


def _overlapping(trials) -> bool:
    """Whether any two trials ran at the same time (one started before the other ended)."""
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    return any(later_start < end for (_, end), (later_start, _) in zip(spans, spans[1:]))


@pytest.mark.integration
def test_a_packed_sweep_trains_trials_together_and_stores_each_whole(write_fast_study):
    study_file = write_fast_study(n_trials=5)
    sweep = _sweeper("sweep", str(study_file), "--pack", "3", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, stderr
    spec = load_study_spec(study_file)
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert sorted(t.number for t in trials) == list(range(5))  # none lost, none run twice, no overshoot
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.state, t.user_attrs) for t in trials]
    assert _overlapping(trials)  # packed: trials ran at the same time in one process
    assert len({t.user_attrs["worker"] for t in trials}) == 1
    assert {t.user_attrs["pack_size"] for t in trials} == {3}
    with CurveStore(spec.storage) as curves:
        rows = curves.read(spec.study_name)
    for trial in trials:
        stored = {(row["split"], row["metric"]) for row in rows if row["trial_number"] == trial.number}
        assert stored >= {(split, metric) for split in ("train", "eval") for metric in ORPO_METRICS}


@pytest.mark.integration
def test_a_packed_sweep_that_runs_out_of_memory_steps_fewer_trials_at_once_and_loses_none(write_fast_study):
    study_file = write_fast_study(n_trials=3)
    environment = {**os.environ, OOM_ABOVE_PACKED_BACKWARD: "1"}  # a backward of two trials does not fit
    sweep = _sweeper("sweep", str(study_file), "--pack", "2", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     env=environment)
    _, stderr = sweep.communicate(timeout=900)
    assert sweep.returncode == 0, stderr
    assert "now 1 trial(s) per step (of 2 in the pack)" in stderr
    spec = load_study_spec(study_file)
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.state, t.user_attrs) for t in trials]
    # the two trials of the first shared step trained again as they were (no micro-batch halved: that would leave
    # its own note); the third came after and stepped alone
    notes = sorted((t.user_attrs.get("notes") or [] for t in trials), key=len)
    assert notes == [[]] + 2 * [["out of memory in a step shared by 2 trials; the pack now steps 1 at a time; "
                                 "trained again"]]


@pytest.mark.integration
def test_ctrl_c_stops_every_trial_of_a_pack_as_interrupted(write_fast_study):
    study_file = write_fast_study(n_trials=4, training={"orpo.max_steps": 400})
    spec = load_study_spec(study_file)
    sweep = _sweeper("sweep", str(study_file), "--pack", "2", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    from test_launch import _wait_for_running_trial, _wait_for_training_to_start  # tests/sweep is on sys.path

    _wait_for_running_trial(spec, after_complete=0)
    _wait_for_training_to_start(spec)
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=180)
    assert sweep.returncode == 130, stderr
    assert "Traceback" not in stderr
    trials = optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()
    assert trials and all(t.state == TrialState.FAIL for t in trials), [t.state for t in trials]
    assert {t.user_attrs["failure_reason"] for t in trials} == {"interrupted"}


def test_a_study_that_varies_the_model_cannot_pack(write_fast_study):
    study_file = write_fast_study(pack=2)
    fields = yaml.safe_load(study_file.read_text())
    fields["space"]["model.revision"] = {"choice": ["main", "other"]}
    study_file.write_text(yaml.safe_dump(fields, sort_keys=False))
    with pytest.raises(ConfigError, match="pack: 2 trains a worker's trials on one base model.*model.revision"):
        load_study_spec(study_file)


def test_pack_must_be_positive_in_the_file_and_on_the_command_line(write_fast_study, capsys):
    with pytest.raises(ConfigError, match="pack"):
        load_study_spec(write_fast_study(pack=0))
    assert main(["sweep", str(write_fast_study()), "--pack", "0"]) == 2
    assert "--pack 0: give 1" in capsys.readouterr().err
