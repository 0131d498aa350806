"""The lean ORPO forward: the same numbers as TRL's full-logits forward, without holding full-vocabulary logits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sweeper.config import ConfigError
from sweeper.data import load_preference_data
from sweeper.metrics import EVAL, ORPO_METRICS
from sweeper.training import run_orpo
from sweeper.training._lean_logps import chunked_token_logps, lean_orpo_forward
from sweeper.training._models import load_base_model, load_tokenizer
from sweeper.training._trl import (  # ORPOTrainer: TRL's own class, the reference
    ORPOTrainer,
    _CheckedORPOTrainer,
    attach_lora,
    orpo_arguments,
    to_text_pairs,
)

ROWS, LENGTH, HIDDEN, VOCAB = 6, 11, 16, 37  # 3 chosen + 3 rejected; a vocabulary no chunk size divides


def _padded_batch(generator: torch.Generator):
    """Right-padded sequences of different lengths; labels mask each row's prompt and padding with -100."""
    input_ids = torch.randint(0, VOCAB, (ROWS, LENGTH), generator=generator)
    attention_mask = torch.ones(ROWS, LENGTH, dtype=torch.long)
    labels = input_ids.clone()
    for row, (prompt, used) in enumerate([(3, 11), (2, 7), (4, 9), (3, 10), (1, 5), (5, 11)]):
        attention_mask[row, used:] = 0
        labels[row, :prompt] = -100
        labels[row, used:] = -100
    return input_ids, attention_mask, labels


def _trl_reference(hidden, head, input_ids, attention_mask, labels, n_chosen):
    """TRL's own code on full logits: get_batch_logps, and the chosen NLL as concatenated_forward computes it."""
    logits = head(hidden)
    logps = ORPOTrainer.get_batch_logps(logits, labels, average_log_prob=True)
    nll_labels = torch.where(attention_mask == 1, input_ids, -100)
    nll = nn.CrossEntropyLoss()(
        logits[:n_chosen, :-1].reshape(-1, logits.shape[-1]), nll_labels[:n_chosen, 1:].reshape(-1)
    )
    return logps[:n_chosen], logps[n_chosen:], logits[:n_chosen, :-1].mean(), logits[n_chosen:, :-1].mean(), nll


@pytest.mark.parametrize("chunk_tokens", [1, 7, 13, 64, 4096])
def test_chunked_terms_and_gradients_equal_full_logits(chunk_tokens):
    generator = torch.Generator().manual_seed(0)
    input_ids, attention_mask, labels = _padded_batch(generator)
    head = nn.Linear(HIDDEN, VOCAB, bias=True).double()
    hidden = torch.randn(ROWS, LENGTH, HIDDEN, generator=generator, dtype=torch.float64, requires_grad=True)

    def loss_of(terms):  # every term feeds the loss, so every one of their gradients is compared
        chosen, rejected, chosen_mean, rejected_mean, nll = terms
        return nll + (chosen - 2 * rejected).sum() + 0 * (chosen_mean + rejected_mean)

    expected = _trl_reference(hidden, head, input_ids, attention_mask, labels, n_chosen=3)
    expected_grads = torch.autograd.grad(loss_of(expected), [hidden, head.weight, head.bias])
    lean = lean_orpo_forward(hidden, head, input_ids, attention_mask, labels, 3, VOCAB, chunk_tokens)
    got = (lean.chosen_logps, lean.rejected_logps, lean.chosen_logits_mean, lean.rejected_logits_mean)
    got += (lean.chosen_nll_loss,)
    got_grads = torch.autograd.grad(loss_of(got), [hidden, head.weight, head.bias])

    for name, want, have in zip(("chosen", "rejected", "chosen mean", "rejected mean", "nll"), expected, got):
        torch.testing.assert_close(have.double(), want, rtol=1e-9, atol=1e-9, msg=name)
    for want, have in zip(expected_grads, got_grads):
        torch.testing.assert_close(have, want, rtol=1e-9, atol=1e-9)


def test_with_gradients_on_no_chunk_keeps_its_logits_for_backward():
    """What autograd saves for backward is at most one chunk's hidden states, never (tokens x vocabulary) logits."""
    generator = torch.Generator().manual_seed(1)
    input_ids, attention_mask, labels = _padded_batch(generator)
    head = nn.Linear(HIDDEN, VOCAB)
    hidden = torch.randn(ROWS, LENGTH, HIDDEN, generator=generator, requires_grad=True)
    saved_sizes = []

    def pack(tensor):
        saved_sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        full = head(hidden).log_softmax(-1).sum()
    assert max(saved_sizes) >= ROWS * LENGTH * VOCAB  # the hook does see full logits when they are kept

    saved_sizes.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        lean = lean_orpo_forward(hidden, head, input_ids, attention_mask, labels, 3, VOCAB, chunk_tokens=8)
    assert max(saved_sizes) < 8 * VOCAB
    (lean.chosen_nll_loss + lean.chosen_logps.sum()).backward()  # and backward recomputes what it needs
    assert hidden.grad is not None and torch.isfinite(hidden.grad).all() and full.isfinite()


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError, match="chunk_tokens"):
        labels = torch.zeros(4, dtype=torch.long)
        chunked_token_logps(torch.zeros(4, 2), nn.Linear(2, 3), labels, labels, chunk_tokens=0)


# --- on the tiny model, through TRL's trainer -------------------------------------------------------------------


@pytest.fixture
def tiny_trainers(fast_config, tmp_path):
    """TRL's forward and the lean one, on one model with LoRA dropout on, and one padded training batch."""
    config = fast_config(lora__lora_dropout=0.1, orpo__per_device_train_batch_size=8)
    data = load_preference_data(config.data)
    tokenizer = load_tokenizer(config, data)
    train, validation = to_text_pairs(data.train, tokenizer), to_text_pairs(data.validation, tokenizer)
    torch.manual_seed(0)
    model = attach_lora(load_base_model(config), config)
    with torch.no_grad():  # PEFT starts lora_B at zero, which would leave every lora_A gradient zero too
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)

    def trainer(chunk_tokens):
        return _CheckedORPOTrainer(
            model=model,
            args=orpo_arguments(config, tmp_path),
            train_dataset=train,
            eval_dataset=validation,
            processing_class=tokenizer,
            logit_chunk_tokens=chunk_tokens,
        )

    trl, lean = trainer(None), trainer(5)
    batch = next(iter(trl.get_train_dataloader()))
    assert (batch["chosen_attention_mask"] == 0).any() or (batch["rejected_attention_mask"] == 0).any()
    return model, trl, lean, batch


def _loss_metrics_and_lora_grads(trainer, model, batch):
    torch.manual_seed(0)  # the same LoRA dropout masks on both paths
    model.zero_grad()
    loss, metrics = trainer.get_batch_loss_metrics(model, batch, train_eval="train")
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return loss.item(), metrics, grads


@pytest.mark.integration
def test_train_metrics_and_lora_gradients_equal_trls(tiny_trainers):
    model, trl, lean, batch = tiny_trainers
    model.train()
    trl_loss, trl_metrics, trl_grads = _loss_metrics_and_lora_grads(trl, model, batch)
    lean_loss, lean_metrics, lean_grads = _loss_metrics_and_lora_grads(lean, model, batch)

    assert set(lean_metrics) == set(trl_metrics) == set(ORPO_METRICS) - {"loss"}
    for name, value in trl_metrics.items():
        assert lean_metrics[name] == pytest.approx(value, abs=1e-4), name
    assert lean_loss == pytest.approx(trl_loss, abs=1e-4)
    assert len(trl_grads) > 0 and set(lean_grads) == set(trl_grads)
    for name, grad in trl_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.integration
def test_eval_metrics_equal_trls(tiny_trainers):
    model, trl, lean, batch = tiny_trainers
    model.eval()
    with torch.no_grad():
        trl_loss, trl_metrics = trl.get_batch_loss_metrics(model, batch, train_eval="eval")
        lean_loss, lean_metrics = lean.get_batch_loss_metrics(model, batch, train_eval="eval")
    assert set(lean_metrics) == set(trl_metrics) and "eval_nll_loss" in lean_metrics
    for name, value in trl_metrics.items():
        assert lean_metrics[name] == pytest.approx(value, abs=1e-4), name
    assert lean_loss.item() == pytest.approx(trl_loss.item(), abs=1e-4)


@pytest.mark.integration
def test_a_trial_with_the_lean_forward_trains_to_trls_metrics(fast_config, tmp_path):
    short = {"orpo__max_steps": 4}  # two trials in this test: half the usual schedule keeps it quick
    trl = run_orpo(fast_config(**short), tmp_path / "trl")
    lean = run_orpo(
        fast_config(**short, compute__lean_orpo_forward=True, compute__logit_chunk_tokens=100), tmp_path / "lean"
    )
    for name in ORPO_METRICS:
        assert math.isfinite(lean.train_metrics[name]) and math.isfinite(lean.eval_metrics[f"eval_{name}"]), name
    assert lean.global_steps == trl.global_steps == 4
    # the same numbers before training (eval at step 0) and after 4 optimizer steps
    for name in ORPO_METRICS:
        (lean_step, lean_start), *_ = lean.curve(name, EVAL)
        (trl_step, trl_start), *_ = trl.curve(name, EVAL)
        assert lean_step == trl_step == 0 and lean_start == pytest.approx(trl_start, abs=1e-4), name
        assert lean.eval_metrics[f"eval_{name}"] == pytest.approx(trl.eval_metrics[f"eval_{name}"], abs=1e-4), name


@pytest.mark.integration
def test_a_model_that_post_processes_its_logits_is_refused(tiny_trainers):
    model, _, lean, batch = tiny_trainers
    language_model = model.get_base_model()
    plain_forward = language_model.forward

    def scaled_forward(*args, **kwargs):  # what e.g. a logit-scaling architecture does after its output layer
        outputs = plain_forward(*args, **kwargs)
        outputs.logits = outputs.logits * 4 + 1
        return outputs

    language_model.forward = scaled_forward
    with pytest.raises(ConfigError, match="compute.lean_orpo_forward: false"):
        lean.get_batch_loss_metrics(model, batch, train_eval="train")
