"""The Optuna internals sweeper relies on (sweeper/storage/_optuna_internals.py), checked against the installed
Optuna: when an upgrade changes one, this fails naming it, instead of a sweep misbehaving quietly."""

from __future__ import annotations


import inspect
import json
import math
import re
import tomllib
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from sweeper.storage import _optuna_internals as internals
from sweeper.storage import _retry
from sweeper.storage import open_storage

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_optuna_is_the_minor_version_the_internals_were_read_from():
    installed = ".".join(optuna.__version__.split(".")[:2])
    assert installed == internals.OPTUNA_TESTED_MINOR, (
        f"Optuna {optuna.__version__} is installed; sweeper/storage/_optuna_internals.py was checked against "
        f"{internals.OPTUNA_TESTED_MINOR}. Re-read each internal there, then update OPTUNA_TESTED_MINOR and the pin"
    )
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (pin,) = [d for d in pyproject["project"]["dependencies"] if re.match(r"optuna[>=<]", d)]
    low, high = re.fullmatch(r"optuna>=([\d.]+),<([\d.]+)", pin).groups()
    assert low == internals.OPTUNA_TESTED_MINOR and high.split(".")[1] == str(int(low.split(".")[1]) + 1)


@pytest.mark.parametrize("name", [*internals.PRIVATE_STORAGE_METHODS, internals.PRIVATE_CREATE_METHOD])
def test_every_private_storage_method_sweeper_wraps_exists(name):
    method = getattr(optuna.storages.RDBStorage, name, None)
    assert callable(method), f"optuna.storages.RDBStorage.{name} is gone: _retry.py wraps it for retries"
    assert name in inspect.getsource(optuna.storages._CachedStorage), (
        f"Optuna's cache no longer calls RDBStorage.{name}: check what it calls instead and wrap that in _retry.py"
    )


def test_every_database_session_of_a_trial_runs_inside_a_retried_method(tmp_path, monkeypatch):
    """What the cache calls is what _retry.py must wrap: a session opened outside any retried method would fail on a
    database restart instead of riding through it."""
    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval_s=1, grace_period_s=5)
    unprotected = []
    from optuna.storages._rdb import storage as rdb_module

    original = getattr(rdb_module, "_create_scoped_session", None)
    assert original is not None, "optuna's _create_scoped_session is gone: update this test's probe"

    def probe(*args, **kwargs):
        if not getattr(_retry._outermost, "active", False):
            unprotected.append(inspect.stack()[1].function)  # the RDBStorage method that opened it
        return original(*args, **kwargs)

    monkeypatch.setattr(rdb_module, "_create_scoped_session", probe)
    study = optuna.create_study(storage=storage, directions=["minimize", "maximize"], study_name="contract")
    study.optimize(lambda trial: [trial.suggest_float("x", 0, 1), 1.0], n_trials=2)
    trial = study.ask()
    trial.set_user_attr("a", 1)
    study.tell(trial, [0.5, 0.5])
    study.get_trials()
    assert not unprotected, f"storage sessions opened outside a retried method by: {sorted(set(unprotected))}"


def test_the_cache_wraps_an_rdb_storage_that_knows_its_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    study = optuna.create_study(storage=url)
    assert isinstance(internals.rdb_storage(study), optuna.storages.RDBStorage)
    assert internals.storage_url(study) == url


def test_the_heartbeat_table_has_a_row_per_beating_trial(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval_s=1, grace_period_s=5)
    study = optuna.create_study(storage=storage)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)  # optimize beats, ask does not
    (trial,) = study.get_trials()
    with sqlalchemy.create_engine(storage.url).connect() as connection:
        ids = connection.execute(sqlalchemy.text(f"SELECT trial_id FROM {internals.HEARTBEAT_TABLE}")).scalars().all()
    assert ids == [internals.trial_id(trial)]


def test_the_heartbeat_retry_marks_the_copy_with_the_names_sweeper_reads(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'r.db'}")
    failed = optuna.trial.create_trial(state=TrialState.FAIL, params={"x": 0.5},
                                       distributions={"x": optuna.distributions.FloatDistribution(0, 1)})
    study.add_trial(failed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, study.get_trials()[0])
    copy = study.get_trials()[1]
    assert copy.system_attrs[internals.RETRIED_FROM] == 0 and copy.system_attrs[internals.RETRY_HISTORY] == [0]


def test_compute_hypervolume_minimises_and_takes_a_reference_point():
    points = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert internals.compute_hypervolume(points, np.array([3.0, 3.0])) == pytest.approx(3.0)


@pytest.mark.parametrize("directions", [["minimize", "maximize"], ["maximize", "maximize", "minimize"], ["minimize"]])
def test_the_pareto_front_is_study_best_trials_without_the_copy(directions):
    study = optuna.create_study(directions=directions)
    assert internals.pareto_front(study) == []
    rng = np.random.default_rng(0)
    for value in rng.integers(0, 6, size=(60, len(directions))):  # small integers: ties and duplicates on the front
        study.tell(study.ask(), [float(v) for v in value])
    study.tell(study.ask(), state=TrialState.FAIL)
    expected = study.best_trials if len(directions) > 1 else [study.best_trial]
    assert [t.number for t in internals.pareto_front(study)] == [t.number for t in expected]
    assert len(expected) > 1 or len(directions) == 1


def _end(study: optuna.Study, trial: optuna.Trial, index: int, running_from: int) -> None:
    """The index-th trial of a two-objective study: infinite values, failed, pruned, complete, or left running."""
    if index == 0:
        study.tell(trial, [float("inf"), float("-inf")])
    elif index == 1:
        study.tell(trial, state=TrialState.FAIL)
    elif index == 2:
        study.tell(trial, state=TrialState.PRUNED)
    elif index < running_from:
        study.tell(trial, [0.5 * index, 1.0 / index])


def test_read_trials_reads_what_get_trials_does_for_the_attributes_named(storage_url, unique_name):
    """A study's trials read column by column (sweeper status at 10,000 trials) are Optuna's own, field for field."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    study = optuna.create_study(study_name=unique_name, storage=open_storage(storage_url, heartbeat_interval_s=None),
                                directions=["minimize", "maximize"])
    for index in range(6):
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_int("batch", 2, 16, step=2)
        trial.suggest_categorical("optimizer", ["adamw", "sgd", None])
        trial.suggest_float("dropout", 0.0, 0.3)
        trial.set_user_attr("failure_reason", f"reason {index}")
        trial.set_user_attr("training_config", {"not": "read"})
        study._storage.set_trial_intermediate_value(trial._trial_id, 0, 0.5)  # not read: `full_trial` reads them
        _end(study, trial, index, running_from=5)
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params={"lr": 1e-3}, distributions={"lr": FloatDistribution(1e-5, 1e-1, log=True)},
        system_attrs={internals.RETRIED_FROM: 1},
    ))
    study.add_trial(optuna.trial.create_trial(
        params={"batch": 4, "optimizer": "sgd"}, values=[1.0, 2.0],
        distributions={"batch": IntDistribution(2, 16, step=2), "optimizer": CategoricalDistribution(["adamw", "sgd", None])},
    ))
    read = internals.read_trials(study, user_attrs=["failure_reason"], system_attrs=[internals.RETRIED_FROM])
    stored = study.get_trials(deepcopy=False)
    assert [t.state for t in read] == [t.state for t in stored] == [
        TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE, TrialState.COMPLETE,
        TrialState.RUNNING, TrialState.WAITING, TrialState.COMPLETE,
    ]
    for mine, theirs in zip(read, stored, strict=True):
        assert (mine.number, mine.values, list(mine.params.items()), mine.distributions) == \
            (theirs.number, theirs.values, list(theirs.params.items()), theirs.distributions)
        assert (mine.datetime_start, mine.datetime_complete) == (theirs.datetime_start, theirs.datetime_complete)
        assert internals.trial_id(mine) == internals.trial_id(theirs)
        assert mine.user_attrs == {k: v for k, v in theirs.user_attrs.items() if k == "failure_reason"}
        assert mine.system_attrs == {k: v for k, v in theirs.system_attrs.items() if k == internals.RETRIED_FROM}
    assert read[0].values == [float("inf"), float("-inf")] and read[6].system_attrs == {internals.RETRIED_FROM: 1}
    assert [t.number for t in internals.pareto_front(study, read)] == [t.number for t in study.best_trials]
    # every user attribute (the analysis's read), and a trial read whole where that is not enough
    every = internals.read_trials(study, every_user_attr=True)
    assert [t.user_attrs for t in every] == [t.user_attrs for t in stored]
    assert every[0].user_attrs["training_config"] == {"not": "read"}
    assert internals.full_trial(study, every[2]) == stored[2]
    assert stored[2].intermediate_values == {0: 0.5}
    assert [t.intermediate_values for t in read + every] == [{}] * 16


def _every_field(trial: optuna.trial.FrozenTrial) -> str:
    """Every attribute of a FrozenTrial, NaN equal to NaN (an intermediate value may be one). Parameters in their
    order (Optuna sorts them by row); the attributes' and intermediate values' order is unspecified in Optuna's read
    (it follows the database's query plan: by key for one trial, by row for another), so sorted."""
    fields = dict(vars(trial))
    for name in ("_user_attrs", "_system_attrs", "intermediate_values"):
        fields[name] = sorted(fields[name].items())
    return repr(fields)


def test_the_column_read_gives_what_optunas_own_read_gives(storage_url, unique_name):
    """sweeper's storage answers Optuna's private `_get_trials` (behind every `get_all_trials` and the trial cache of
    every sampler and pruner) by columns: every field of every trial, in Optuna's order, for each way the cache asks
    (all trials, some states, the unfinished ones and those after the last finished)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    storage = open_storage(storage_url, heartbeat_interval_s=None)
    assert isinstance(storage, _retry.RetryingRDBStorage)
    study = optuna.create_study(study_name=unique_name, storage=storage, directions=["minimize", "maximize"])
    for index in range(7):
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_int("batch", 2, 16, step=2)
        trial.suggest_categorical("optimizer", ["adamw", "sgd", None])
        trial.set_user_attr("curve", {"loss": [1.0, 0.5], "steps": [1, 2]})
        trial.set_user_attr("reason", f"reason {index}")
        trial.set_user_attr("a_late_key", index)  # inserted after others: Optuna's order is by row, not by key
        trial.set_user_attr("text", ['a,"b"]', "],[", "\u00e9\n", None, True, float("nan"), -float("inf"), 1e-300])
        trial.storage.set_trial_system_attr(trial._trial_id, "retry_history", [index])
        for step, value in enumerate([0.9, float("nan"), float("inf"), -float("inf"), 0.1 * index][: index + 1]):
            storage.set_trial_intermediate_value(trial._trial_id, step, value)  # Trial.report refuses 2 objectives
        _end(study, trial, index, running_from=6)
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params={"lr": 1e-3}, distributions={"lr": FloatDistribution(1e-5, 1e-1, log=True)},
        system_attrs={internals.RETRIED_FROM: 1},
    ))
    study.add_trial(optuna.trial.create_trial(
        params={"optimizer": None}, values=[1.0, 2.0],
        distributions={"optimizer": CategoricalDistribution(["adamw", "sgd", None])},
    ))
    study_id = study._study_id
    ids = [internals.trial_id(t) for t in study.get_trials(deepcopy=False)]
    asks = [
        (None, set(), -1),
        ((TrialState.COMPLETE,), set(), -1),
        ((TrialState.COMPLETE, TrialState.PRUNED), set(), -1),
        (None, {ids[6], ids[7]}, ids[5]),  # the cache: unfinished ones, and every one after the last finished
        (None, {ids[6], ids[7], ids[8]}, ids[6]),  # an included id above the bound counts once, as Optuna's
        (None, set(), ids[3]),
        ((TrialState.RUNNING,), {ids[6]}, ids[2]),
    ]
    for states, included, greater_than in asks:
        theirs = optuna.storages.RDBStorage._get_trials(storage, study_id, states, set(included), greater_than)
        mine = storage._get_trials(study_id, states, set(included), greater_than)
        assert [_every_field(t) for t in mine] == [_every_field(t) for t in theirs], (states, included, greater_than)
    from optuna.storages._rdb import models

    built: list = []  # the point of the column read: no ORM object per trial, attribute and value

    def on_load(trial, context):
        built.append(trial)

    sqlalchemy.event.listen(models.TrialModel, "load", on_load)
    try:
        assert len(storage.get_all_trials(study_id)) == 9
        assert built == []
        optuna.storages.RDBStorage._get_trials(storage, study_id, None, set(), -1)
        assert len(built) == 9  # the probe sees Optuna's own read
    finally:
        sqlalchemy.event.remove(models.TrialModel, "load", on_load)
    with pytest.raises(KeyError):
        storage._get_trials(study_id + 1000, None, set(), -1)


def test_the_column_read_of_more_unfinished_trials_than_the_database_takes_variables(tmp_path, monkeypatch):
    """Optuna reads every trial and filters them itself when the unfinished ids overflow the statement; so does the
    column read (here SQLite takes 4 variables a statement, and the details are read 3 trials at a time)."""
    import sqlite3

    storage = open_storage(f"sqlite:///{tmp_path / 'v.db'}", heartbeat_interval_s=None)
    study = optuna.create_study(storage=storage)
    trials = [study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}) for _ in range(8)]
    for trial in trials[5:]:
        study.tell(trial, 0.5)
    ids = [trial._trial_id for trial in trials]
    unfinished, last_finished = set(ids[:5]), ids[5]  # ids at or below the bound: each a variable of its own
    expected = [_every_field(t) for t in storage._get_trials(study._study_id, None, unfinished, last_finished)]

    def few_variables(connection, record):
        connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 4)

    sqlalchemy.event.listen(storage.engine, "connect", few_variables)
    storage.engine.dispose()  # new connections, each with the limit
    monkeypatch.setattr(internals, "ID_CHUNK", 3)
    with pytest.raises(sqlalchemy.exc.OperationalError, match="too many SQL variables"):
        with storage.engine.connect() as connection:  # the limit holds
            connection.exec_driver_sql("SELECT ?, ?, ?, ?, ?", (1, 2, 3, 4, 5))
    read = storage._get_trials(study._study_id, None, unfinished, last_finished)
    assert [_every_field(t) for t in read] == expected and len(read) == 7


def test_json_values_decode_as_json_loads_does_one_by_one():
    """The column read decodes a chunk's attributes in one call; what json.dumps writes comes back as json.loads
    gives it one text at a time, and texts that do not decode one by one still fail as they would."""
    values = [1, -2.5, "a,b", '"],["', "\u00e9", None, True, [], {}, {"k": [1, {"x": None}]}, float("inf"), 1e308]
    texts = [json.dumps(value) for value in values]
    assert internals.json_values(texts) == [json.loads(text) for text in texts] == values
    assert math.isnan(internals.json_values([json.dumps(float("nan"))])[0])
    assert internals.json_values([]) == []
    with pytest.raises(json.JSONDecodeError):
        internals.json_values(["1,2", "3"])  # joined they would read as three values
    with pytest.raises(json.JSONDecodeError):
        internals.json_values(["1", "[2"])


def test_the_internals_the_vendored_multi_metric_pruner_uses_exist():
    # sweeper/_vendor/multi_metric_pruner is kept as published; it reaches these
    from optuna._warnings import optuna_warn
    from optuna.trial import Trial

    assert callable(optuna_warn) and callable(Trial._get_latest_trial)
    import optuna.storages._in_memory  # noqa: F401  (it quiets this module's logger while it builds a study)
