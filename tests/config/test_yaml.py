"""Settings files are read as bounded plain data: anchors work, alias bombs and huge files are refused, secrets in
echoed values are hidden and long values cut."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeper.config import ConfigError, load_yaml_text, read_yaml_mapping, redact_secrets, shown_value
from sweeper.config._yaml import MAX_SHOWN_CHARS, MAX_YAML_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_anchors_and_merge_keys_still_work():
    data = load_yaml_text("base: &base {r: 8, alpha: 16}\nlora:\n  <<: *base\n  r: 4\nagain: *base\n")
    assert data["lora"] == {"r": 4, "alpha": 16} and data["again"] == {"r": 8, "alpha": 16}


def test_an_alias_bomb_is_refused_before_it_expands():
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]")
    with pytest.raises(ConfigError, match="expand to more than 100,000 values"):
        load_yaml_text("\n".join(levels))
    assert len(load_yaml_text("\n".join(levels[:4]))["d"]) == 10  # 11,110 values: an ordinary nesting passes


def test_a_huge_file_is_refused_by_size(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("notes: " + "x" * MAX_YAML_BYTES + "\n")
    with pytest.raises(ConfigError, match=rf"{path}: .* bytes; a study file or training config is at most"):
        read_yaml_mapping(path)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql//sweeper:s3cret@host/db",
        "postgresql:/sweeper:s3cret@host/db",
        "postgresql://sweeper:s3c@ret@host/db",
        "postgresql://:s3cret@host/db",
        "['postgresql://sweeper:s3cret@host/db']",
    ],
)
def test_passwords_are_hidden_whatever_the_shape_of_the_url(url):
    redacted = redact_secrets(url)
    assert "s3c" not in redacted and "ret@" not in redacted and "***@host/db" in redacted


def test_echoed_values_are_cut():
    shown = shown_value("y" * 10_000)
    assert len(shown) < MAX_SHOWN_CHARS + 40 and shown.endswith("(10002 characters)")


def test_a_key_written_twice_is_refused_with_its_line():
    with pytest.raises(yaml.constructor.ConstructorError, match="'beta' is written twice"):
        load_yaml_text("orpo:\n  beta: 0.1\n  learning_rate: 1.0e-4\n  beta: 0.5\n")


def test_infinite_numbers_and_truth_values_are_refused(tmp_path):
    from sweeper.config import load_training_config
    from sweeper.study import load_study_spec

    with pytest.raises(ConfigError, match="orpo.learning_rate: Input should be a finite number"):
        load_training_config(REPO_ROOT / "configs" / "tiny.yaml", ["orpo.learning_rate=.inf"])
    study = tmp_path / "s.yaml"
    study.write_text(
        f"study_name: t\nbase_config: {REPO_ROOT / 'configs' / 'tiny.yaml'}\nobjectives: [{{name: eval_nll_loss}}]\n"
        "space: {orpo.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}}\nn_trials: true\n"
    )
    with pytest.raises(ConfigError, match="n_trials is a number, not true"):
        load_study_spec(study)
    study.write_text(study.read_text().replace("n_trials: true", "timeout_s: .inf"))
    with pytest.raises(ConfigError, match="timeout_s: Input should be a finite number"):
        load_study_spec(study)
