"""The `compute:` section: switches that change memory and speed, never the metrics."""

import pytest

from sweeper.config import ConfigError, TrainingConfig, build_training_config


def test_the_lean_forward_is_off_by_default_and_switches_on_by_override():
    assert TrainingConfig().compute.lean_orpo_forward is False
    config = build_training_config({}, ["compute.lean_orpo_forward=true", "compute.logit_chunk_tokens=256"])
    assert (config.compute.lean_orpo_forward, config.compute.logit_chunk_tokens) == (True, 256)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"compute.logit_chunk_tokens": 0}, "compute.logit_chunk_tokens"),
        ({"compute.lean_orpo_forward": "sometimes"}, "compute.lean_orpo_forward"),
        ({"compute.lean_orpo_froward": True}, "compute.lean_orpo_froward"),
    ],
)
def test_bad_compute_values_name_the_file_and_field(overrides, fragment):
    with pytest.raises(ConfigError) as caught:
        build_training_config({}, overrides, source="cfg.yaml")
    assert "cfg.yaml" in str(caught.value) and fragment in str(caught.value)


def test_the_switch_stays_out_of_the_orpo_section():
    # `orpo:` must keep parsing as TRL's ORPOConfig, which has no such field
    assert "lean_orpo_forward" not in TrainingConfig().orpo.model_dump()
