"""Creating or joining the Optuna study a study file declares."""

from __future__ import annotations

import json
import warnings

import optuna

from ..config import ConfigError
from ..storage import redact_url, storage_url
from ..study import StudySpec, build_pruner, build_sampler
from ._identity import INPUTS_ATTR, INPUTS_HISTORY_ATTR, StudyInputs, changed_inputs, refuse_changed_inputs

SPEC_ATTR = "sweeper_spec"


def open_study(
    spec: StudySpec,
    storage: optuna.storages.BaseStorage,
    inputs: StudyInputs | None = None,
    allow_changed_inputs: bool = False,
) -> optuna.Study:
    """Create the study, or join it when it exists. An existing study with other objectives is refused: its stored
    values would mean something else. With `inputs`, a new study remembers them and an existing one built on other
    inputs (space, fixed values, base config, data) is refused unless `allow_changed_inputs`."""
    sampler = build_sampler(spec.sampler, len(spec.objectives))
    try:
        # by its name alone (Optuna's study summaries would read every trial of every study: 9 s at 3,000 trials of
        # a real trial's size, paid by every sweep and worker joining the study)
        study = optuna.load_study(study_name=spec.study_name, storage=storage, sampler=sampler, pruner=build_pruner(spec.pruner))
    except KeyError:  # no such study yet: created below
        pass
    else:
        _check_same_objectives(spec, study)
        if inputs is not None:
            _check_same_inputs(spec, study, inputs, allow_changed_inputs)
        return study
    try:
        study = optuna.create_study(
            study_name=spec.study_name,
            storage=storage,
            directions=spec.directions,
            sampler=sampler,
            pruner=build_pruner(spec.pruner),
        )
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
        return open_study(spec, storage, inputs, allow_changed_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(spec.objective_names)
    stored = json.loads(spec.model_dump_json())
    stored["storage"] = redact_url(spec.storage)  # user attributes are shown by the dashboard and exports
    study.set_user_attr(SPEC_ATTR, stored)
    if inputs is not None:
        study.set_user_attr(INPUTS_ATTR, inputs.record())
    return study


def _check_same_inputs(spec: StudySpec, study: optuna.Study, inputs: StudyInputs, allow_changed: bool) -> None:
    current = inputs.record()
    stored = study.user_attrs.get(INPUTS_ATTR)
    if stored is None:  # a study from before inputs were remembered: what it was built on is unknown
        study.set_user_attr(INPUTS_ATTR, current)
        return
    changes = changed_inputs(stored, current)
    if not changes:
        return
    if not allow_changed:
        url = storage_url(study)
        raise refuse_changed_inputs(spec, redact_url(url) if url else "the storage", changes)
    history = list(study.user_attrs.get(INPUTS_HISTORY_ATTR, []))
    study.set_user_attr(INPUTS_HISTORY_ATTR, [*history, stored])
    study.set_user_attr(INPUTS_ATTR, current)


def _check_same_objectives(spec: StudySpec, study: optuna.Study) -> None:
    stored_directions = [d.name.lower() for d in study.directions]
    stored_names = study.metric_names
    if stored_directions != spec.directions or (stored_names and stored_names != spec.objective_names):
        url = storage_url(study)
        raise ConfigError(
            f"study_name: {spec.study_name!r} already exists in {redact_url(url) if url else 'the storage'} with "
            f"objectives {stored_names or '?'} ({', '.join(stored_directions)}), but the study file asks for "
            f"{spec.objective_names} ({', '.join(spec.directions)}). Its stored values would mean something else: "
            "choose a new study_name, or restore the original objectives."
        )


def stored_spec(study: optuna.Study) -> dict | None:
    return study.user_attrs.get(SPEC_ATTR)
