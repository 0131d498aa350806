import pytest

from sweeper.faults import OOM_ABOVE_MICRO_BATCH, RAISE_IF
from sweeper.trial import NON_FINITE_LOSS, OUT_OF_MEMORY, TrialFailure, halved_micro_batch, run_trial

pytestmark = pytest.mark.integration


def test_halving_keeps_the_effective_batch(fast_config):
    config = fast_config(orpo__per_device_train_batch_size=8, orpo__gradient_accumulation_steps=2)
    smaller = halved_micro_batch(config)
    assert (smaller.orpo.per_device_train_batch_size, smaller.orpo.gradient_accumulation_steps) == (4, 4)
    assert smaller.effective_batch_size == config.effective_batch_size
    assert halved_micro_batch(fast_config(orpo__per_device_train_batch_size=1)) is None
    assert halved_micro_batch(fast_config(orpo__per_device_train_batch_size=3)) is None


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
