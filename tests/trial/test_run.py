import math

import pytest

from sweeper.faults import OOM_ABOVE_MICRO_BATCH, OOM_WITHOUT_CHECKPOINTING, RAISE_IF
from sweeper.trial import (
    NON_FINITE_LOSS,
    OUT_OF_MEMORY,
    TrialFailure,
    halved_micro_batch,
    memory_fallbacks,
    run_trial,
)

pytestmark = pytest.mark.integration


def test_halving_keeps_the_effective_batch(fast_config):
    config = fast_config(orpo__per_device_train_batch_size=8, orpo__gradient_accumulation_steps=2)
    smaller = halved_micro_batch(config)
    assert (smaller.orpo.per_device_train_batch_size, smaller.orpo.gradient_accumulation_steps) == (4, 4)
    assert smaller.effective_batch_size == config.effective_batch_size
    assert halved_micro_batch(fast_config(orpo__per_device_train_batch_size=1)) is None
    assert halved_micro_batch(fast_config(orpo__per_device_train_batch_size=3)) is None


def _shape(config):
    orpo = config.orpo
    return orpo.per_device_train_batch_size, orpo.gradient_accumulation_steps, orpo.gradient_checkpointing


def test_memory_fallbacks_halve_first_then_checkpoint(fast_config):
    tried = memory_fallbacks(fast_config(orpo__per_device_train_batch_size=8))
    assert [_shape(config) for config, _ in tried] == [(4, 2, False), (4, 2, True)]
    assert [change for _, change in tried] == ["at 4 x 2", "with gradient checkpointing"]
    # a micro-batch that cannot be halved goes straight to checkpointing; with that on too, nothing is left
    assert [_shape(c) for c, _ in memory_fallbacks(fast_config(orpo__per_device_train_batch_size=1))] == [(1, 1, True)]
    assert [_shape(c) for c, _ in memory_fallbacks(fast_config(orpo__per_device_train_batch_size=3))] == [(3, 1, True)]
    assert memory_fallbacks(fast_config(orpo__per_device_train_batch_size=1, orpo__gradient_checkpointing=True)) == []
    # a packed trial trains without checkpointing (the pack refuses it): halving is all it has
    assert [_shape(c) for c, _ in memory_fallbacks(fast_config(orpo__per_device_train_batch_size=8), packed=True)] \
        == [(4, 2, False)]
    assert memory_fallbacks(fast_config(orpo__per_device_train_batch_size=1), packed=True) == []


def test_out_of_memory_at_half_the_micro_batch_is_retried_with_gradient_checkpointing(
    fast_config, tmp_path, monkeypatch
):
    # the injected fault spares only a model with checkpointing on, so finishing proves it was really on
    monkeypatch.setenv(OOM_WITHOUT_CHECKPOINTING, "1")
    result = run_trial(fast_config(orpo__per_device_train_batch_size=8, orpo__max_steps=4), tmp_path)
    assert (result.micro_batch_size, result.gradient_accumulation_steps, result.effective_batch_size) == (4, 2, 8)
    assert result.notes == [
        "out of memory at micro-batch 8; ran at 4 x 2",
        "out of memory at micro-batch 4; ran with gradient checkpointing",
    ]
    assert result.global_steps == 4 and math.isfinite(result.eval_metrics["eval_loss"])


def test_out_of_memory_is_retried_at_half_the_micro_batch(fast_config, tmp_path, monkeypatch):
    monkeypatch.setenv(OOM_ABOVE_MICRO_BATCH, "4")
    result = run_trial(fast_config(orpo__per_device_train_batch_size=8), tmp_path)
    assert (result.micro_batch_size, result.gradient_accumulation_steps, result.effective_batch_size) == (4, 2, 8)
    assert "out of memory at micro-batch 8" in result.notes[0]


def test_out_of_memory_that_persists_fails_with_its_reason(fast_config, tmp_path, monkeypatch):
    monkeypatch.setenv(OOM_ABOVE_MICRO_BATCH, "1")
    with pytest.raises(TrialFailure) as caught:
        run_trial(fast_config(orpo__per_device_train_batch_size=8), tmp_path)
    assert caught.value.reason == OUT_OF_MEMORY


def test_non_finite_loss_becomes_its_reason(fast_config, tmp_path):
    with pytest.raises(TrialFailure) as caught:
        run_trial(fast_config(orpo__learning_rate=1e30, orpo__max_grad_norm=0), tmp_path)
    assert caught.value.reason == NON_FINITE_LOSS


def test_an_exception_becomes_a_failure_with_its_type(fast_config, tmp_path, monkeypatch):
    monkeypatch.setenv(RAISE_IF, "orpo.weight_decay=0.0777")
    with pytest.raises(TrialFailure) as caught:
        run_trial(fast_config(orpo__weight_decay=0.0777), tmp_path)
    assert caught.value.reason == "InjectedFault" and "0.0777" in caught.value.detail
