"""A configuration is trained once per study: a draw or an enqueued trial that repeats one is refused, uncounted."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from sweeper.storage import CurveStore, TrialRecord, open_storage
from sweeper.study import load_study_spec
from sweeper.sweep import open_study
from sweeper.sweep._objective import TrialObjective
from sweeper.sweep._progress import trials_toward_target
from sweeper.trial import TrialFailure


def _study_with_one_finished_trial(study_file):
    """A study whose trial 0 is COMPLETE, told by hand (no training), with the parameters it holds."""
    spec = load_study_spec(study_file)
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    trial = study.ask()
    spec.space.suggest(trial)
    study.tell(trial, [1.0, 0.5])
    return spec, study, study.trials[0].params


def test_an_enqueued_repeat_of_a_finished_trial_is_refused_and_not_counted(write_fast_study):
    spec, study, params = _study_with_one_finished_trial(write_fast_study(n_trials=2))
    study.enqueue_trial(params)
    with CurveStore(spec.storage) as curves:
        objective = TrialObjective(spec, curves)
        study.optimize(objective, n_trials=1, catch=(TrialFailure,))  # refused before any training
    repeat = study.trials[1]
    assert repeat.state == TrialState.FAIL
    assert repeat.user_attrs["failure_reason"] == "repeated configuration"
    assert TrialRecord.of(repeat).repeats_trial == 0
    assert objective.consecutive_repeats == 1
    assert trials_toward_target(study) == 1  # the sweep draws another instead of falling short


def test_a_study_that_allows_repeats_runs_them(write_fast_study):
    spec, study, params = _study_with_one_finished_trial(write_fast_study(n_trials=2, allow_repeats=True))
    study.enqueue_trial(params)
    trial = study.ask()
    spec.space.suggest(trial)
    with CurveStore(spec.storage) as curves:
        objective = TrialObjective(spec, curves)
        assert not objective.refuse_repeats
        objective._refuse_repeat(trial)  # what the objective runs first: here it lets the trial through
    assert TrialRecord.of(study.trials[1]).repeats_trial is None


def test_replicates_may_repeat_a_configuration(write_fast_study):
    spec, study, _ = _study_with_one_finished_trial(write_fast_study(n_trials=2))
    with CurveStore(spec.storage) as curves:
        assert not TrialObjective(spec, curves, refuse_repeats=False).refuse_repeats


def test_the_progress_line_counts_only_trials_toward_the_target(tmp_path):
    from sweeper.sweep import read_progress

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}", directions=["minimize", "maximize"])
    for values in ([1.0, 0.5], [0.5, 1.0]):
        study.tell(study.ask(), values)
    for reason in ("interrupted", "repeated configuration", "out of memory"):
        trial = study.ask()
        trial.set_user_attr("failure_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
    progress = read_progress(study, target=3)
    assert (progress.done, progress.failed) == (3, 1)  # was 5 of 3 ("trials 5/3") with 3 failed


def test_a_trial_failed_by_the_heartbeat_check_names_its_rerun(tmp_path):
    from optuna.distributions import FloatDistribution

    from sweeper.analysis import analyze_study
    from sweeper.sweep import status_rows

    url = f"sqlite:///{tmp_path / 'died.db'}"
    study = optuna.create_study(study_name="died", storage=url, directions=["minimize", "maximize"])
    params, distributions = {"learning_rate": 1e-3}, {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True)}
    # as Optuna leaves them: the dead worker's trial FAIL with no attribute, its copy pointing back at it
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, state=TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, values=[1.0, 0.5],
                                              system_attrs={"failed_trial": 0}))
    assert status_rows(study)[0]["failure_reason"] == "worker died (re-run as trial 1)"
    assert analyze_study("died", url).trials[0].failure_reason == "worker died (re-run as trial 1)"
