"""ORPO's log-probabilities without full-vocabulary logits: pure torch, no TRL or PEFT.

TRL's `ORPOTrainer.concatenated_forward` keeps logits of shape (2 x batch, length, vocab) alive until backward; with
a 152k-token vocabulary that dwarfs the rest of a 0.5B model's activations. Here the language-model head is applied
to the last hidden state a few tokens at a time, under `torch.utils.checkpoint`, so each chunk's logits exist only
while that chunk is reduced to three numbers per token, and are recomputed chunk by chunk on backward. The results
are TRL's quantities (same masks, same shift, same averages), so its loss and metric code runs on them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100  # TRL's and PyTorch's label for "no loss at this position"


@dataclass
class LeanForward:
    """What TRL's `concatenated_forward` returns, with logits replaced by their means (all TRL's metrics use)."""

    chosen_logps: torch.Tensor  # (batch,) average log-prob of the chosen completion tokens
    rejected_logps: torch.Tensor  # (batch,)
    chosen_logits_mean: torch.Tensor  # () mean of chosen logits over positions [:-1] and the whole vocabulary
    rejected_logits_mean: torch.Tensor  # ()
    chosen_nll_loss: torch.Tensor  # () cross-entropy over every attended chosen token, prompt included


def _chunk_terms(
    head: Callable[[torch.Tensor], torch.Tensor],
    hidden: torch.Tensor,
    completion_labels: torch.Tensor,
    sequence_labels: torch.Tensor,
    logit_softcap: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token: log-prob of the completion label, log-prob of the sequence label, sum of the logits."""
    # at least float32, even for bf16 models: a 152k-way log-sum-exp loses digits in bf16
    logits = head(hidden)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if logit_softcap is not None:
        logits = torch.tanh(logits / logit_softcap) * logit_softcap
    log_normalizer = torch.logsumexp(logits, dim=-1)
    completion_logps = logits.gather(-1, completion_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) - log_normalizer
    sequence_logps = logits.gather(-1, sequence_labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) - log_normalizer
    return completion_logps, sequence_logps, logits.detach().sum(-1)


def chunked_token_logps(
    hidden: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    completion_labels: torch.Tensor,
    sequence_labels: torch.Tensor,
    chunk_tokens: int,
    logit_softcap: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`head` applied to `hidden` (tokens, hidden_size) `chunk_tokens` rows at a time.

    Returns per token (tokens,): log p(completion label), log p(sequence label) and the sum of the logits over the
    vocabulary. Labels equal to -100 give a finite placeholder to be masked by the caller. With gradients on, each
    chunk is checkpointed: its logits are freed after the forward and recomputed on backward.
    """
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
    pieces = []
    for start in range(0, hidden.shape[0], chunk_tokens):
        rows = slice(start, start + chunk_tokens)
        arguments = (head, hidden[rows], completion_labels[rows], sequence_labels[rows], logit_softcap)
        if torch.is_grad_enabled():  # the head's weights may be trained even where `hidden` needs no gradient
            pieces.append(checkpoint(_chunk_terms, *arguments, use_reentrant=False))
        else:
            pieces.append(_chunk_terms(*arguments))
    completion_logps, sequence_logps, logit_sums = (torch.cat(column) for column in zip(*pieces))
    return completion_logps, sequence_logps, logit_sums


def lean_orpo_forward(
    hidden: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    n_chosen: int,
    vocab_size: int,
    chunk_tokens: int,
    logit_softcap: float | None = None,
) -> LeanForward:
    """TRL's ORPO forward quantities for a decoder-only model from its last hidden state (2 x batch, length, hidden).

    Rows [:n_chosen] are the chosen sequences, the rest the rejected ones. `labels` masks the prompt and padding with
    -100 (TRL's `concatenated_labels`); the NLL, as in TRL, is over every attended chosen token, prompt included.
    """
    rows, length, _ = hidden.shape
    # Position t predicts token t + 1, so the last position predicts nothing.
    completion_labels = labels[:, 1:]
    sequence_labels = torch.where(attention_mask == 1, input_ids, IGNORE_INDEX)[:, 1:]
    completion_logps, sequence_logps, logit_sums = chunked_token_logps(
        hidden[:, :-1].reshape(rows * (length - 1), -1),
        head,
        completion_labels.reshape(-1),
        sequence_labels.reshape(-1),
        chunk_tokens,
        logit_softcap,
    )
    completion_logps = completion_logps.view(rows, length - 1)
    sequence_logps = sequence_logps.view(rows, length - 1)
    logit_sums = logit_sums.view(rows, length - 1)

    completion_mask = completion_labels != IGNORE_INDEX
    average_logps = (completion_logps * completion_mask).sum(-1) / completion_mask.sum(-1)
    chosen_mask = (sequence_labels != IGNORE_INDEX)[:n_chosen]
    chosen_nll_loss = -(sequence_logps[:n_chosen] * chosen_mask).sum() / chosen_mask.sum()
    values_per_row = (length - 1) * vocab_size
    return LeanForward(
        chosen_logps=average_logps[:n_chosen],
        rejected_logps=average_logps[n_chosen:],
        chosen_logits_mean=logit_sums[:n_chosen].sum() / (n_chosen * values_per_row),
        rejected_logits_mean=logit_sums[n_chosen:].sum() / ((rows - n_chosen) * values_per_row),
        chosen_nll_loss=chosen_nll_loss,
    )


@contextmanager
def captured_output(module: torch.nn.Module) -> Iterator[list]:
    """Collects `module`'s forward outputs (e.g. the decoder's, whose `last_hidden_state` feeds the head)."""
    outputs: list = []
    handle = module.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()
