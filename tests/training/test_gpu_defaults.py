"""Device defaults: SDPA attention and bf16 where the device has it, checkpointing only on request.

The CPU tests run everywhere; the `gpu` ones skip themselves where no CUDA device is present.
"""

from __future__ import annotations

import math

import pytest
import torch

from sweeper.config import ConfigError
from sweeper.metrics import ORPO_METRICS
from sweeper.training import run_orpo
from sweeper.training._models import load_base_model
from sweeper.training._trl import orpo_arguments

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_attention_is_sdpa_unless_the_config_names_another(fast_config):
    assert load_base_model(fast_config()).config._attn_implementation == "sdpa"
    assert load_base_model(fast_config(model__attn_implementation="eager")).config._attn_implementation == "eager"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU side of bf16 auto")
def test_on_a_cpu_bf16_auto_is_off_and_bf16_true_is_refused(fast_config, tmp_path):
    assert orpo_arguments(fast_config(), tmp_path).bf16 is False
    assert load_base_model(fast_config()).dtype == torch.float32
    with pytest.raises(ConfigError, match="orpo.bf16"):
        orpo_arguments(fast_config(orpo__bf16=True), tmp_path)


def test_gradient_checkpointing_stays_off_unless_asked(fast_config, tmp_path):
    assert orpo_arguments(fast_config(), tmp_path).gradient_checkpointing is False
    assert orpo_arguments(fast_config(orpo__gradient_checkpointing=True), tmp_path).gradient_checkpointing is True


@pytest.mark.gpu
@needs_cuda
def test_on_cuda_weights_and_training_are_bf16(fast_config, tmp_path):
    assert orpo_arguments(fast_config(), tmp_path).bf16 is torch.cuda.is_bf16_supported()
    if torch.cuda.is_bf16_supported():
        assert load_base_model(fast_config()).dtype == torch.bfloat16


@pytest.mark.gpu
@pytest.mark.integration
@needs_cuda
def test_on_cuda_a_lean_trial_trains_with_finite_metrics(fast_config, tmp_path):
    result = run_orpo(fast_config(compute__lean_orpo_forward=True), tmp_path)
    for name in ORPO_METRICS:
        assert math.isfinite(result.eval_metrics[f"eval_{name}"]), name
