"""A study remembers what it was built on; a resume on other data, base config, space or fixed values is refused
unless allowed, and then each trial names the version it ran on (no training here)."""

from __future__ import annotations

import json

import pytest
import yaml

from sweeper.cli import main
from sweeper.config import ConfigError
from sweeper.storage import open_storage
from sweeper.study import load_study_spec
from sweeper.sweep import INPUTS_ATTR, HeartbeatSettings, check_study_inputs, open_checked, open_study
from sweeper.sweep._identity import INPUTS_HISTORY_ATTR


def _rows(count: int, salt: str = "") -> list[dict]:
    return [
        {"prompt": f"q {index} {salt}", "chosen": f"good answer {index}", "rejected": f"bad answer {index}"}
        for index in range(count)
    ]


def _write_data(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def study_on_a_file(tmp_path, write_fast_study):
    """A study file over a local JSONL file, and a function that opens the study as `sweeper sweep` does."""
    data = tmp_path / "pairs.jsonl"
    _write_data(data, _rows(20))
    study_file = write_fast_study(training={"data.source": str(data)})

    def open_as_sweep(allow: bool = False):
        spec = load_study_spec(study_file)
        storage = open_storage(spec.storage, heartbeat_interval_s=None)
        return open_study(spec, storage, check_study_inputs(spec), allow_changed_inputs=allow)

    return study_file, data, open_as_sweep


def test_a_new_study_remembers_its_inputs_and_a_plain_resume_passes(study_on_a_file):
    _, _, open_as_sweep = study_on_a_file
    recorded = open_as_sweep().user_attrs[INPUTS_ATTR]
    assert recorded["dataset_fingerprint"] and recorded["base_config_hash"]
    assert set(recorded["space"]) == {"orpo.learning_rate", "orpo.per_device_train_batch_size", "orpo.weight_decay"}
    assert "trl" in recorded["versions"] and "sweeper" in recorded["versions"]
    assert open_as_sweep().user_attrs[INPUTS_ATTR] == recorded


def test_changed_data_stops_the_resume_with_what_changed(study_on_a_file):
    _, data, open_as_sweep = study_on_a_file
    open_as_sweep()
    _write_data(data, _rows(20, salt="edited"))
    with pytest.raises(ConfigError, match=r"data changed \(fingerprint .* -> .*\).*--allow-changed-inputs"):
        open_as_sweep()


def test_changed_space_and_fixed_values_are_named(study_on_a_file):
    study_file, _, open_as_sweep = study_on_a_file
    open_as_sweep()
    fields = yaml.safe_load(study_file.read_text())
    fields["space"]["orpo.beta"] = {"log_uniform": [0.01, 1.0]}
    fields["space"]["orpo.weight_decay"] = {"uniform": [0.0, 0.3]}
    fields["fixed"] = {"orpo.max_steps": 3}
    study_file.write_text(yaml.safe_dump(fields, sort_keys=False))
    with pytest.raises(ConfigError) as refused:
        open_as_sweep()
    message = str(refused.value)
    assert "space: orpo.beta is new" in message
    assert "space: orpo.weight_decay changed from" in message
    assert "fixed: orpo.max_steps changed from (unset) to 3" in message
    assert "base config changed" in message  # fixed values are part of the config every trial starts from


def test_an_allowed_change_is_recorded_as_a_new_version(study_on_a_file):
    _, data, open_as_sweep = study_on_a_file
    first = open_as_sweep().user_attrs[INPUTS_ATTR]
    _write_data(data, _rows(20, salt="edited"))
    study = open_as_sweep(allow=True)
    assert study.user_attrs[INPUTS_HISTORY_ATTR] == [first]
    assert study.user_attrs[INPUTS_ATTR]["digest"] != first["digest"]
    open_as_sweep()  # the new version is now the study's: resuming on it needs no flag


def test_the_sweep_command_refuses_changed_data_before_any_trial(study_on_a_file, capsys):
    study_file, data, open_as_sweep = study_on_a_file
    study = open_as_sweep()
    _write_data(data, _rows(20, salt="edited"))
    assert main(["sweep", str(study_file)]) == 2
    error = capsys.readouterr().err
    assert "data changed" in error and "--allow-changed-inputs" in error
    assert len(study.get_trials()) == 0


def test_a_refused_preflight_leaves_no_empty_database(tmp_path, write_fast_study):
    data = tmp_path / "pairs.jsonl"
    _write_data(data, [{"prompt": "p", "chosen": "same", "rejected": "same"}] * 3)
    study_file = write_fast_study(training={"data.source": str(data)}, storage=f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(ConfigError, match="identical"):
        open_checked(load_study_spec(study_file), HeartbeatSettings())  # opens (creates) the storage, then refuses
    assert not list(tmp_path.glob("new.db*"))
