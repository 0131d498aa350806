"""The TRL/PEFT boundary: ORPOConfig built one way for training and for checking an exported config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sweeper.config import ConfigError, build_training_config, read_training_mapping
from sweeper.training import parse_with_trl_and_peft
from sweeper.training._trl import orpo_arguments

TINY = read_training_mapping(Path(__file__).parents[2] / "configs" / "tiny.yaml")


def _config(**overrides):
    return build_training_config(TINY, overrides, source="test")


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a machine without a GPU accepts")
def test_an_exported_bf16_trial_parses_on_a_cpu_but_does_not_train_there(tmp_path):
    # a GPU sweep's bf16 trial, checked by `sweeper export` on a laptop: TRL's parser takes bf16 with use_cpu
    orpo, lora = parse_with_trl_and_peft(_config(**{"orpo.bf16": True}))
    assert orpo.bf16 is True and orpo.use_cpu is True and lora.r == 8
    with pytest.raises(ConfigError, match="orpo.bf16: true, but this device has no bf16 support"):
        orpo_arguments(_config(**{"orpo.bf16": True}), tmp_path)


def test_auto_precision_resolves_the_same_way_for_training_and_for_the_export_check(tmp_path):
    config = _config(**{"orpo.bf16": "auto"})
    parsed, _ = parse_with_trl_and_peft(config)
    trained = orpo_arguments(config, tmp_path)
    assert parsed.bf16 == trained.bf16 == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    assert trained.disable_dropout is False  # TRL's default would zero the LoRA dropout being swept
