import dataclasses
from pathlib import Path

import pytest

from sweeper.config import ConfigError, build_training_config, load_training_config, parse_override
from sweeper.config._training import LoraSection, OrpoSection

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_validates(path):
    config = load_training_config(path)
    assert config.orpo.learning_rate > 0


def test_orpo_section_names_are_orpoconfig_fields():
    from trl.experimental.orpo import ORPOConfig

    known = {field.name for field in dataclasses.fields(ORPOConfig)}
    assert set(OrpoSection.model_fields) <= known


def test_lora_section_names_are_loraconfig_fields():
    from peft import LoraConfig

    known = {field.name for field in dataclasses.fields(LoraConfig)}
    assert set(LoraSection.model_fields) <= known


def test_unknown_key_names_file_field_and_hint(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("orpo:\n  learning_rat: 0.001\n")
    with pytest.raises(ConfigError) as caught:
        load_training_config(path)
    message = str(caught.value)
    assert str(path) in message and "orpo.learning_rat" in message and "unknown key" in message


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"orpo.learning_rate": -1}, "orpo.learning_rate"),
        ({"orpo.beta": 0}, "orpo.beta"),
        ({"lora.lora_dropout": 1.5}, "lora.lora_dropout"),
        ({"orpo.per_device_train_batch_size": "eight"}, "orpo.per_device_train_batch_size"),
        ({"data.builtin.min_items": 9, "data.builtin.max_items": 3}, "data.builtin"),
        ({"orpo.max_steps": 0}, "orpo"),
        ({"lora.target_modules": []}, "lora.target_modules"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as caught:
        build_training_config({}, overrides, source="cfg.yaml")
    assert "cfg.yaml" in str(caught.value) and field in str(caught.value)


def test_overrides_parse_yaml_scalars_and_apply():
    assert parse_override("orpo.learning_rate=1e-4") == ("orpo.learning_rate", 1e-4)
    config = build_training_config({}, ["orpo.beta=0.3", "lora.target_modules=[q_proj, v_proj]"])
    assert config.orpo.beta == 0.3 and config.lora.target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize("text", ["learning_rate", "=3", "orpo.beta=[unclosed"])
def test_malformed_override_is_rejected(text):
    with pytest.raises(ConfigError, match="--set"):
        parse_override(text)


@pytest.mark.parametrize("content, hint", [("", "empty"), ("- a\n- b\n", "mapping"), ("a: [", "YAML")])
def test_unreadable_files_say_why(tmp_path, content, hint):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=hint):
        load_training_config(path)


def test_yaml_tags_cannot_execute_code(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match=r"!!python/object/apply:os.system asks to build a Python object.*refused"):
        load_training_config(path)


def test_data_source_is_relative_to_the_config_files_folder(tmp_path, monkeypatch):
    import json

    from sweeper.config import load_training_config

    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "pairs.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    (folder / "run.yaml").write_text("model: {name: builtin:tiny-llama}\ndata: {source: pairs.jsonl}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_training_config(folder / "run.yaml")
    assert config.data.source == str(folder / "pairs.jsonl")  # absolute: an export re-runs from any folder
    # given on the command line, a path is the working directory's, also made absolute
    overridden = load_training_config(folder / "run.yaml", ["data.source=local.jsonl"])
    assert overridden.data.source == str(elsewhere / "local.jsonl")
    # a hub id is no path
    assert load_training_config(folder / "run.yaml", ["data.source=owner/name"]).data.source == "owner/name"
