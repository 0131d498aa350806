"""Reuse across a worker's trials: one base model, bit-identical after every trial and training exactly as a fresh
load does; tokenized data computed once per data, tokenizer and max length, shared with other workers on disk."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from transformers import AutoTokenizer, TrainerCallback

from sweeper.model import tiny_model_path
from sweeper.training import TrialReuse, run_orpo, weights_fingerprint
from sweeper.training._models import base_model_key, load_base_model
from sweeper.training._reuse import tokenized_cache_folder, tokenizer_fingerprint

# Two optimizer steps with one evaluation: every metric, in about a second.
TINY = {
    "orpo__max_steps": 2,
    "orpo__eval_steps": 2,
    "orpo__logging_steps": 1,
    "data__builtin__n_train": 16,
    "data__builtin__n_eval": 8,
}
TIMINGS = ("runtime", "samples_per_second", "steps_per_second")


def _without_timings(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if not key.endswith(TIMINGS)}


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _plain_state(model: torch.nn.Module) -> dict:
    return {
        "modules": [(name, type(module).__name__) for name, module in model.named_modules()],
        "hooks": sum(len(module._forward_hooks) + len(module._forward_pre_hooks) for module in model.modules()),
        "checkpointing": model.is_gradient_checkpointing,
        "use_cache": model.config.use_cache,
        "requires_grad": {name: p.requires_grad for name, p in model.named_parameters()},
    }


@pytest.mark.integration
def test_the_reused_base_model_is_bit_identical_after_each_trial_and_trains_as_a_fresh_load(fast_config, tmp_path):
    reuse = TrialReuse(persist_tokenized=False)
    checkpointed = fast_config(**TINY, orpo__gradient_checkpointing=True)  # leaves the most behind: hooks, flags
    plain = fast_config(**TINY)
    base = reuse.base_model(base_model_key(plain), lambda: load_base_model(plain))
    loaded, as_loaded = _snapshot(base), _plain_state(base)

    for config in (checkpointed, plain):
        reused = run_orpo(config, tmp_path / "out", reuse=reuse)
        assert reuse.held_model is base  # kept, not reloaded
        after = base.state_dict()
        assert after.keys() == loaded.keys()
        assert all(torch.equal(after[name], tensor) for name, tensor in loaded.items())  # bit-identical
        assert _plain_state(base) == as_loaded  # adapters, hooks, checkpointing and flags all gone
    assert (reuse.counts.model_loads, reuse.counts.model_reuses, reuse.counts.model_reloads_after_change) == (1, 2, 0)

    fresh = run_orpo(plain, tmp_path / "fresh")  # loads the model and tokenizes the data itself
    assert _without_timings(reused.eval_metrics) == _without_timings(fresh.eval_metrics)
    assert _without_timings(reused.train_metrics) == _without_timings(fresh.train_metrics)
    assert [(p.step, p.split, p.metric) for p in reused.curves] == [(p.step, p.split, p.metric) for p in fresh.curves]


class _ChangesBaseWeights(TrainerCallback):
    """Writes into a base weight mid-trial: what a bug in adapter handling would do."""

    def on_step_end(self, args, state, control, model=None, **kwargs):
        with torch.no_grad():
            model.get_base_model().model.embed_tokens.weight[0, 0] += 1.0


@pytest.mark.integration
def test_a_trial_that_changed_the_base_weights_is_caught_and_the_next_trial_loads_afresh(fast_config, tmp_path, caplog):
    reuse = TrialReuse(persist_tokenized=False)
    config = fast_config(**TINY)
    with caplog.at_level(logging.WARNING, logger="sweeper.training._reuse"):
        run_orpo(config, tmp_path / "a", callbacks=[_ChangesBaseWeights()], reuse=reuse)
    assert reuse.counts.model_reloads_after_change == 1 and reuse.held_model is None
    assert "is not as loaded after the trial (weights changed)" in caplog.text

    run_orpo(config, tmp_path / "b", reuse=reuse)
    assert reuse.counts.model_loads == 2
    assert weights_fingerprint(reuse.held_model) == weights_fingerprint(load_base_model(config))


def test_the_base_model_key_changes_with_model_revision_dtype_and_attention(fast_config):
    keys = {
        base_model_key(fast_config()),
        base_model_key(fast_config(model__revision="main")),
        base_model_key(fast_config(model__dtype="bfloat16")),
        base_model_key(fast_config(model__attn_implementation="eager")),
        base_model_key(fast_config(model__name="/elsewhere/model")),
    }
    assert len(keys) == 5
    assert base_model_key(fast_config(orpo__learning_rate=1e-2, lora__r=4)) == base_model_key(fast_config())

    reuse, loads = TrialReuse(), []
    for key in ("a", "a", "b", "a"):  # another key drops the held model and loads its own
        reuse.base_model(key, lambda: loads.append(torch.nn.Linear(2, 2)) or loads[-1])
    assert len(loads) == 3 and reuse.counts.model_reuses == 1


def _tokenizer_variant(tmp_path, change) -> str:
    """A copy of the built-in model whose tokenizer `change` alters; returns its folder."""
    folder = tmp_path / "tiny-variant"
    shutil.copytree(tiny_model_path(), folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    change(tokenizer)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_tokenizer_fingerprint_follows_what_changes_the_ids(tmp_path):
    same = [tokenizer_fingerprint(AutoTokenizer.from_pretrained(tiny_model_path())) for _ in range(2)]
    assert same[0] == same[1]
    added = _tokenizer_variant(tmp_path, lambda tokenizer: tokenizer.add_tokens(["thirtytwo"]))
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(added)) != same[0]
    templated = AutoTokenizer.from_pretrained(tiny_model_path())
    templated.chat_template = "{{ messages[0]['content'] }}"
    assert tokenizer_fingerprint(templated) != same[0]


@pytest.mark.integration
def test_tokenized_data_is_cached_per_data_tokenizer_and_max_length_and_shared_on_disk(
    fast_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))  # counts start from an empty cache
    first_worker = TrialReuse()
    counts = first_worker.counts
    base = fast_config(**TINY)
    first = run_orpo(base, tmp_path / "out", reuse=first_worker)
    assert (counts.tokenized_built, counts.tokenized_from_memory, counts.tokenized_from_disk) == (1, 0, 0)
    run_orpo(fast_config(**TINY, orpo__learning_rate=1e-2), tmp_path / "out", reuse=first_worker)
    assert (counts.tokenized_built, counts.tokenized_from_memory, counts.pairs_reused) == (1, 1, 1)

    run_orpo(fast_config(**TINY, orpo__max_length=40), tmp_path / "out", reuse=first_worker)
    assert counts.tokenized_built == 2  # max length: a miss
    run_orpo(fast_config(**{**TINY, "data__builtin__n_train": 20}), tmp_path / "out", reuse=first_worker)
    assert counts.tokenized_built == 3  # other rows: a miss
    variant = _tokenizer_variant(tmp_path, lambda tokenizer: tokenizer.add_tokens(["thirtytwo"]))
    run_orpo(fast_config(**TINY, model__name=variant), tmp_path / "out", reuse=first_worker)
    assert counts.tokenized_built == 4  # another tokenizer: a miss
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 4

    other_worker = TrialReuse()  # another process: the disk cache, not its own tokenization
    second = run_orpo(base, tmp_path / "out", reuse=other_worker)
    assert (other_worker.counts.tokenized_built, other_worker.counts.tokenized_from_disk) == (0, 1)
    assert _without_timings(second.eval_metrics) == _without_timings(first.eval_metrics)


@pytest.mark.integration
def test_an_edited_local_data_file_is_a_miss(fast_config, tmp_path):
    rows = [
        {"prompt": f"sort the numbers : {a} {b} =", "chosen": f" {min(a, b)} {max(a, b)}",
         "rejected": f" {max(a, b)} {min(a, b)}"}
        for a in range(1, 9) for b in range(10, 13)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = fast_config(**TINY, data__source=str(data))
    reuse = TrialReuse()
    run_orpo(config, tmp_path / "out", reuse=reuse)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows[:-3]))  # same name, fewer rows
    run_orpo(config, tmp_path / "out", reuse=reuse)
    assert (reuse.counts.pairs_built, reuse.counts.tokenized_built) == (2, 2)


@pytest.mark.integration
@pytest.mark.parametrize("persist", [True, False])
def test_tokenized_entries_land_on_disk_only_when_persisting(fast_config, tmp_path, monkeypatch, persist):
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))
    run_orpo(fast_config(**TINY), tmp_path / "out", reuse=TrialReuse(persist_tokenized=persist))
    stored = list((tmp_path / "cache" / "tokenized").glob("orpo-*"))
    assert bool(stored) is persist
    if persist:
        assert stored[0] == tokenized_cache_folder(stored[0].name.split("-", 2)[2])
        assert {path.name for path in stored[0].iterdir()} == {"train", "eval"}
