"""Every use of Optuna's internals, in one place. Optuna is pinned to the minor version these were read from
(pyproject.toml), and tests/storage/test_optuna_contract.py fails, naming the internal, when one of them changes.

Why each is needed: Optuna has no public way to get a study's storage URL or the RDBStorage under its cache, to
know which RUNNING trials have sent a heartbeat, to compute a hypervolume, to find the Pareto front without
`study.best_trials`' deep copy of every trial, or to read a study's trials without decoding every attribute of
every trial (`sweeper status` shows a few columns: at 10,000 trials Optuna's own read decodes about half a million
attributes); and the cache in front of every study's storage calls RDBStorage's private methods, which a storage
that retries must therefore also wrap, and whose read of every trial (`_get_trials`, ORM objects for every value and
attribute) sweeper's storage answers by columns instead (`read_trials_as_optuna`).
"""

from __future__ import annotations

import datetime
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Container, Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import json_to_distribution
from optuna.storages._rdb import models
from optuna._hypervolume import compute_hypervolume  # no public equivalent (Optuna 5.1)
from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
from optuna.trial import FrozenTrial, TrialState

from ._fetch import plain_rows

# The minor version these internals were read from; the contract test checks the installed one against it.
OPTUNA_TESTED_MINOR = "5.1"

HEARTBEAT_TABLE = "trial_heartbeats"  # Optuna's RDB table: one row per trial that has beaten, column trial_id
# System attributes Optuna's RetryHeartbeatStaleTrialCallback puts on a re-queued copy (public names since 2.8)
RETRIED_FROM = "failed_trial"
RETRY_HISTORY = "retry_history"

# RDBStorage's private methods that Optuna's cache (`_CachedStorage`, in front of every study's RDBStorage) calls
# instead of the public ones, and the one the heartbeat check uses.
PRIVATE_STORAGE_METHODS = ("_get_trials", "_set_trial_param", "_get_best_trial_id", "_get_stale_trial_ids")
PRIVATE_CREATE_METHOD = "_create_new_trial"

__all__ = [
    "HEARTBEAT_TABLE",
    "OPTUNA_TESTED_MINOR",
    "PRIVATE_CREATE_METHOD",
    "PRIVATE_STORAGE_METHODS",
    "RETRIED_FROM",
    "RETRY_HISTORY",
    "compute_hypervolume",
    "full_trial",
    "pareto_front",
    "rdb_storage",
    "read_trials",
    "read_trials_as_optuna",
    "storage_url",
    "trial_id",
]


def rdb_storage(study: optuna.Study) -> Any:
    """The storage under the study's cache (an RDBStorage for every storage sweeper opens)."""
    storage = study._storage
    return getattr(storage, "_backend", storage)


def storage_url(study: optuna.Study) -> str:
    """The URL of the study's RDB storage (with its password: redact before showing), or "" for another storage."""
    return getattr(rdb_storage(study), "url", "")


def trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (heartbeats are keyed by it, not by the trial number)."""
    return trial._trial_id


def pareto_front(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
    """The study's best trials: its Pareto front, or its best trial for one objective; none before a trial completes.
    `trials`: the study's, where the caller has read them already (`read_trials`).

    `study.best_trials` deep-copies every trial of the study (its user attributes included) before it looks at one
    value: 1.6 s per call at 10,000 trials, paid by the progress line after every trial. This is Optuna's own front
    on the trials as stored, uncopied: read them, never change them."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return []
    if len(study.directions) == 1:
        return [study.best_trial]  # one trial read and copied
    return _get_pareto_front_trials_by_trials(complete, study.directions)


def read_trials(
    study: optuna.Study,
    user_attrs: Sequence[str] = (),
    system_attrs: Sequence[str] = (),
    every_user_attr: bool = False,
) -> list[FrozenTrial]:
    """The study's trials in number order, each with its state, times, values and parameters, and of its attributes
    only the ones named (or, with `every_user_attr`, every user attribute): what a summary of a large study needs
    (about 20x less than `study.get_trials` at 10,000 trials; with every user attribute about a fifth of its memory
    and time, since no ORM objects are built). The trials carry no intermediate values (`full_trial` reads them).
    One read; the caller retries it (`call_with_retries`)."""
    trial_table = models.TrialModel.__table__
    with rdb_storage(study).engine.connect() as connection:
        rows = connection.execute(
            _trial_rows().where(trial_table.c.study_id == study._study_id).order_by(trial_table.c.number)
        ).all()
        details = _trial_details(connection, [row[0] for row in rows], intermediate=False, system_keys=system_attrs,
                                 user_keys=None if every_user_attr else user_attrs)
    return _frozen_trials(rows, details)


# the detail kinds whose columns SQLAlchemy converts on reading (the value types are Enum columns)
CONVERTED = ("values", "intermediate")
ID_CHUNK = 500  # trial ids per IN (...) of the detail reads, as SQLAlchemy's selectinload batches them


def read_trials_as_optuna(
    engine: sqlalchemy.Engine,
    study_id: int,
    states: Container[TrialState] | None,
    included_trial_ids: set[int],
    trial_id_greater_than: int,
) -> list[FrozenTrial]:
    """RDBStorage._get_trials, the read behind every `get_all_trials` and Optuna's trial cache, with the same trials
    and every field of each, read by columns instead of through the ORM: at 10,000 trials of a real trial's size
    Optuna's own builds about a million ORM objects, most of a joining worker's first suggestion (tests compare the
    two field by field). The trials' rows are read first, then their details: a trial finishing in between shows
    its old state with its new values, as in Optuna's own read, and is read again by the cache since it is not
    finished in what it got."""
    included = {trial_id_ for trial_id_ in included_trial_ids if trial_id_ <= trial_id_greater_than}
    trial_table = models.TrialModel.__table__
    query = _trial_rows().where(trial_table.c.study_id == study_id)
    if states is not None:
        query = query.where(trial_table.c.state.in_(list(states)))
    with engine.connect() as connection:
        if connection.execute(sqlalchemy.select(models.StudyModel.__table__.c.study_id).where(
                models.StudyModel.__table__.c.study_id == study_id)).first() is None:
            raise KeyError(models.NOT_FOUND_MSG)  # as Optuna's: the study is gone
        query = query.order_by(trial_table.c.trial_id)
        if included and trial_id_greater_than > -1:
            try:
                rows = connection.execute(query.where(sqlalchemy.or_(
                    trial_table.c.trial_id.in_(sorted(included)), trial_table.c.trial_id > trial_id_greater_than,
                ))).all()
            except sqlalchemy.exc.OperationalError:  # more ids than the database takes variables: as Optuna does
                connection.rollback()
                rows = [row for row in connection.execute(query).all()
                        if row[0] in included or row[0] > trial_id_greater_than]
        elif trial_id_greater_than > -1:
            rows = connection.execute(query.where(trial_table.c.trial_id > trial_id_greater_than)).all()
        else:
            rows = connection.execute(query).all()
        details = _trial_details(connection, [row[0] for row in rows])
    return _frozen_trials(rows, details)


def _trial_rows() -> sqlalchemy.Select:
    """The trials' own columns, as `_frozen_trials` takes them."""
    table = models.TrialModel.__table__
    return sqlalchemy.select(table.c.trial_id, table.c.number, table.c.state, table.c.datetime_start,
                             table.c.datetime_complete)


def _frozen_trials(rows, details: dict[str, dict[int, dict]]) -> list[FrozenTrial]:
    """FrozenTrials of these trial rows (`_trial_rows`) with their details (`_trial_details`), as Optuna builds them."""
    distribution_of = _distribution_decoder()
    trials = []
    for trial_id_, number, state, started, completed in rows:
        values = details["values"].get(trial_id_)
        params = details["params"].get(trial_id_, {})
        distributions = {name: distribution_of(text) for name, (_, text) in params.items()}
        trials.append(FrozenTrial(
            number=number,
            state=state,
            value=None,
            values=[values[objective] for objective in range(len(values))] if values else None,
            datetime_start=_local(started),
            datetime_complete=_local(completed),
            params={name: distributions[name].to_external_repr(value) for name, (value, _) in params.items()},
            distributions=distributions,
            user_attrs=details["user"].get(trial_id_, {}),
            system_attrs=details["system"].get(trial_id_, {}),
            intermediate_values=details["intermediate"].get(trial_id_, {}),
            trial_id=trial_id_,
        ))
    return trials


def _trial_details(
    connection,
    trial_ids: list[int],
    user_keys: Sequence[str] | None = None,
    system_keys: Sequence[str] | None = None,
    intermediate: bool = True,
) -> dict[str, dict[int, dict]]:
    """Values, parameters, attributes and intermediate values of these trials, decoded as Optuna decodes them, each
    kind in row order (Optuna sorts the parameters so; its order of the rest follows the database's query plan).
    `user_keys`, `system_keys`: only the attributes of these keys (None: every one); `intermediate` False: none."""
    # Each kind's rows are (key, stored columns..., trial_id); its decoder turns a chunk's rows into their values
    def decode_values(rows):
        return [models.TrialValueModel.stored_repr_to_value(value, kind) for _, value, kind, _ in rows]

    def decode_params(rows):
        return [(value, distribution) for _, value, distribution, _ in rows]

    def decode_attributes(rows):
        return json_values([text for _, text, _ in rows])

    def decode_intermediate(rows):
        return [models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(value, kind)
                for _, value, kind, _ in rows]

    # kind: (table, its columns (the key first), its row id, decoder); half a million attributes at 10,000 trials
    tables = {
        "values": (models.TrialValueModel.__table__, ("objective", "value", "value_type"), "trial_value_id",
                   decode_values),
        "params": (models.TrialParamModel.__table__, ("param_name", "param_value", "distribution_json"), "param_id",
                   decode_params),
        "user": (models.TrialUserAttributeModel.__table__, ("key", "value_json"), "trial_user_attribute_id",
                 decode_attributes),
        "system": (models.TrialSystemAttributeModel.__table__, ("key", "value_json"), "trial_system_attribute_id",
                   decode_attributes),
        "intermediate": (models.TrialIntermediateValueModel.__table__,
                         ("step", "intermediate_value", "intermediate_value_type"), "trial_intermediate_value_id",
                         decode_intermediate),
    }
    keys = {"user": user_keys, "system": system_keys}
    found: dict[str, dict[int, dict]] = {kind: defaultdict(dict) for kind in tables}
    asked = {kind: entry for kind, entry in tables.items()
             if (keys.get(kind) is None or len(keys[kind]) > 0) and (kind != "intermediate" or intermediate)}
    for start in range(0, len(trial_ids), ID_CHUNK):
        chunk = trial_ids[start:start + ID_CHUNK]
        for kind, (table, columns, row_id, decode) in asked.items():
            query = (sqlalchemy.select(*(table.c[name] for name in columns), table.c.trial_id)
                     .where(table.c.trial_id.in_(chunk)).order_by(table.c[row_id]))
            if keys.get(kind) is not None:
                query = query.where(table.c.key.in_(list(keys[kind])))
            result = connection.execute(query)
            rows = result.all() if kind in CONVERTED else plain_rows(result)
            into = found[kind]
            for row, value in zip(rows, decode(rows)):
                into[row[-1]][row[0]] = value
    return found


def json_values(texts: Sequence[str]) -> list[Any]:
    """`[json.loads(text) for text in texts]` in one call of the decoder: a JSON text is self-delimiting, so the
    texts joined as one array's items decode to the same values (a call each cost about 1 s of a 10,000-trial
    read). Texts that do not decode one by one (not written by json.dumps, so never by Optuna) may join into
    another number of items: then each is decoded alone, raising where Optuna's own read would."""
    if not texts:
        return []
    decoded = json.loads("[" + ",".join(texts) + "]")
    if len(decoded) != len(texts):
        return [json.loads(text) for text in texts]
    return decoded


def _distribution_decoder() -> Callable[[str], Any]:
    """`json_to_distribution` for one read: each distinct distribution decoded once, not once per trial."""
    return functools.lru_cache(maxsize=None)(json_to_distribution)


def full_trial(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """The trial as Optuna reads it, with its intermediate values and every attribute (for the few trials that
    need what `read_trials` leaves out)."""
    return study._storage.get_trial(trial_id(trial))


def _local(stored_utc: datetime.datetime | None) -> datetime.datetime | None:
    """Optuna stores naive UTC and shows naive local time (RDB models' datetime properties)."""
    if stored_utc is None:
        return None
    return stored_utc.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)
