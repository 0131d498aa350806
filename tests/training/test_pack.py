"""Packed trials (sweeper/training/_pack.py): several trials training at once on one base model, each as it would
alone. The integration tests train real tiny trials in threads, as a packed worker does."""

import statistics
import threading

import pytest
import torch

from sweeper.config import ConfigError
from sweeper.faults import OOM_ABOVE_PACKED_BACKWARD, OOM_ABOVE_PACKED_ROWS
from sweeper.metrics import EVAL, TRAIN
from sweeper.replicate import replicate_seeds
from sweeper.training import NonFiniteLossError, TrialReuse, run_orpo, weights_fingerprint
from sweeper.training._models import load_base_model
from sweeper.training._pack import PackedTrialModel, TrainingPack
from sweeper.training._trl import attach_lora, lora_dropout_probabilities
from sweeper.trial import run_trial
from transformers import set_seed

TIMING = ("runtime", "per_second")


def run_in_pack(configs, tmp_path, pack=None, run=run_orpo):
    """Each config in its own thread on one pack, as a packed worker's slots run them (through `run`: run_orpo, or
    run_trial with its out-of-memory handling). Returns results or errors."""
    pack = pack or TrainingPack(load_base_model(configs[0]), size=len(configs))
    reuse = TrialReuse()
    outcomes = [None] * len(configs)

    def train(index):
        try:
            outcomes[index] = run(configs[index], tmp_path / f"packed-{index}", reuse=reuse, pack=pack)
        except BaseException as error:  # noqa: BLE001 - the test looks at it
            outcomes[index] = error

    threads = [threading.Thread(target=train, args=(index,)) for index in range(len(configs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, pack


def packed_matching_solo(configs, tmp_path, pack=None, run=run_orpo):
    """Each config run alone, then all packed (`run_in_pack`); asserts each packed run equals its solo run (LoRA
    dropout 0; the faults sweeper/faults.py injects into packs leave solo runs alone) and returns (results, pack)."""
    solo = [run_orpo(config, tmp_path / f"solo-{index}") for index, config in enumerate(configs)]
    packed, pack = run_in_pack(configs, tmp_path, pack, run)
    for alone, together in zip(solo, packed, strict=True):
        assert not isinstance(together, BaseException), together
        assert_same_run(alone, together)
    return packed, pack


def assert_same_run(solo, packed, tolerance=1e-4):
    assert packed.global_steps == solo.global_steps
    for metrics_of in (lambda r: r.eval_metrics, lambda r: r.train_metrics):
        expected, actual = metrics_of(solo), metrics_of(packed)
        for key, value in expected.items():
            if not any(part in key for part in TIMING):
                assert actual[key] == pytest.approx(value, abs=tolerance), key
    for split in (TRAIN, EVAL):
        for metric in ("loss", "rewards/margins", "nll_loss"):
            assert [step for step, _ in packed.curve(metric, split)] == [step for step, _ in solo.curve(metric, split)]
            for (_, a), (_, b) in zip(solo.curve(metric, split), packed.curve(metric, split)):
                assert b == pytest.approx(a, abs=tolerance), (metric, split)


@pytest.mark.integration
def test_packed_trials_match_solo_runs_with_different_micro_batches_and_accumulation(fast_config, tmp_path):
    # LoRA dropout 0: nothing random but the data order and the adapters' initialisation, both per trial
    configs = [
        fast_config(lora__lora_dropout=0.0, orpo__per_device_train_batch_size=2, orpo__gradient_accumulation_steps=3,
                    orpo__learning_rate=1e-3, seed=1),
        fast_config(lora__lora_dropout=0.0, orpo__per_device_train_batch_size=8, orpo__weight_decay=0.05,
                    orpo__beta=0.3, orpo__learning_rate=3e-3, seed=2),
        fast_config(lora__lora_dropout=0.0, orpo__per_device_train_batch_size=4, orpo__gradient_accumulation_steps=2,
                    orpo__max_steps=5, orpo__learning_rate=5e-4, seed=3),
    ]
    packed, pack = packed_matching_solo(configs, tmp_path)
    # they really trained together: forwards with all three trials' rows in them
    assert max(pack.counts.trials_per_forward) == 3
    assert pack.counts.forwards < sum(len(r.curves) for r in packed)  # fewer forwards than the trials ran alone


@pytest.mark.integration
def test_packed_trials_with_the_lean_forward_match_their_solo_lean_runs(fast_config, tmp_path):
    lean = {"compute__lean_orpo_forward": True, "compute__logit_chunk_tokens": 100, "lora__lora_dropout": 0.0}
    configs = [
        fast_config(**lean, orpo__per_device_train_batch_size=2, orpo__gradient_accumulation_steps=2, seed=1),
        fast_config(**lean, orpo__per_device_train_batch_size=4, orpo__learning_rate=3e-3, seed=2),
    ]
    _, pack = packed_matching_solo(configs, tmp_path)
    assert max(pack.counts.trials_per_forward) == 2
    # lean in the pack too: a training step kept the hidden state, not the logits (vocabulary x wider)
    _, full_pack = run_in_pack([fast_config(lora__lora_dropout=0.0, seed=1)] * 2, tmp_path)
    assert max(took for _, took in pack.counts.step_memory) < min(took for _, took in full_pack.counts.step_memory)


@pytest.mark.integration
def test_a_failing_trial_leaves_the_others_in_its_pack_as_they_would_be_alone(fast_config, tmp_path):
    healthy = fast_config(lora__lora_dropout=0.0, orpo__learning_rate=1e-3)
    diverging = fast_config(orpo__learning_rate=1e30, orpo__max_grad_norm=0)  # overflows within a step or two
    solo = run_orpo(healthy, tmp_path / "solo")
    base = load_base_model(healthy)
    fingerprint = weights_fingerprint(base)
    (together, failed), pack = run_in_pack([healthy, diverging], tmp_path, TrainingPack(base, size=2))
    assert isinstance(failed, NonFiniteLossError)
    assert_same_run(solo, together)
    # every trial left: the base model holds no adapters and its weights are as loaded
    assert not hasattr(pack.base_model, "peft_config")
    assert weights_fingerprint(pack.base_model) == fingerprint


def _trials_at_two_pairs(fast_config, count):
    # LoRA dropout 0, as in the equivalence test: each packed trial must match its solo run
    return [
        fast_config(lora__lora_dropout=0.0, orpo__per_device_train_batch_size=2, orpo__gradient_accumulation_steps=2,
                    orpo__learning_rate=rate, seed=index)
        for index, rate in enumerate([1e-3, 3e-3, 5e-4, 2e-3][:count])
    ]


@pytest.mark.integration
def test_out_of_memory_in_a_shared_forward_halves_the_pack_step_not_any_trials_batch(
    fast_config, tmp_path, monkeypatch
):
    configs = _trials_at_two_pairs(fast_config, 4)  # 4 rows each: 16 in a step of all four
    monkeypatch.setenv(OOM_ABOVE_PACKED_ROWS, "8")
    packed, pack = packed_matching_solo(configs, tmp_path)
    ((capacity, why, after),) = pack.counts.capacity_changes
    assert capacity == 2 and "out of memory in a forward of 4 trials" in why
    assert max(pack.counts.trials_per_forward[after:]) == 2  # two at a time from then on, and still shared
    assert all(result.micro_batch_size == 2 and result.gradient_accumulation_steps == 2 for result in packed)


@pytest.mark.integration
def test_out_of_memory_in_a_shared_backward_trains_its_trials_again_unchanged_in_smaller_steps(
    fast_config, tmp_path, monkeypatch
):
    configs = _trials_at_two_pairs(fast_config, 2)
    monkeypatch.setenv(OOM_ABOVE_PACKED_BACKWARD, "1")
    packed, pack = packed_matching_solo(configs, tmp_path, run=run_trial)
    assert [capacity for capacity, _, _ in pack.counts.capacity_changes] == [1]
    for result in packed:
        assert result.notes == ["out of memory in a step shared by 2 trials; the pack now steps 1 at a time; "
                                "trained again"]
        assert result.micro_batch_size == 2  # its own batch untouched: the pack gave way first
    # a trial alone that still runs out of memory halves its micro-batch, as it would solo
    monkeypatch.setenv(OOM_ABOVE_PACKED_ROWS, "3")
    (alone,), _ = run_in_pack(configs[:1], tmp_path, run=run_trial)
    assert alone.micro_batch_size == 1 and alone.notes == ["out of memory at micro-batch 2; ran at 1 x 4"]


@pytest.mark.integration
def test_a_pack_steps_no_more_trials_at_once_than_its_memory_fits(fast_config, tmp_path):
    configs = _trials_at_two_pairs(fast_config, 3)
    base = load_base_model(configs[0])
    _, unlimited = run_in_pack(configs, tmp_path, TrainingPack(base, size=3))
    assert unlimited.step_capacity == 3 and not unlimited.counts.capacity_changes  # a tiny model: room for all
    trials, took = unlimited.counts.step_memory[0]
    assert trials == 3 and took > 0
    # room for one trial's share of that step and a little: the first step measures, then one at a time
    budget = int(took / trials * 1.5)
    _, pack = packed_matching_solo(
        configs, tmp_path, TrainingPack(load_base_model(configs[0]), size=3, memory_budget=budget)
    )
    ((capacity, why, after),) = pack.counts.capacity_changes
    assert capacity == 1 and "budgeted" in why
    assert max(pack.counts.trials_per_forward[after:]) == 1
    assert [trials for trials, _ in pack.counts.step_memory[1:]] == [1] * (len(pack.counts.step_memory) - 1)


@pytest.mark.integration
def test_with_lora_dropout_a_packed_trial_agrees_with_its_solo_run_within_the_seed_spread(fast_config, tmp_path):
    """Packed trials draw their dropout masks from the RNG the pack shares, so they cannot equal their solo runs;
    they must agree within what the seed alone moves (the seeds `sweeper replicate` would run)."""
    def trial(seed):
        return fast_config(lora__lora_dropout=0.3, orpo__learning_rate=3e-3, seed=seed)

    seeds = [0, *replicate_seeds(0, 4)]
    solo = [run_orpo(trial(seed), tmp_path / f"solo-{seed}") for seed in seeds]
    (packed, _), _ = run_in_pack([trial(0), fast_config(lora__lora_dropout=0.1, seed=9)], tmp_path)
    for metric in ("eval_loss", "eval_nll_loss", "eval_log_odds_ratio", "eval_rewards/margins",
                   "eval_rewards/accuracies"):
        spread = statistics.stdev(result.eval_metrics[metric] for result in solo)
        assert abs(packed.eval_metrics[metric] - solo[0].eval_metrics[metric]) <= 2 * spread, metric


class _DropoutSpy:
    """Reads the shared model's LoRA dropout probabilities while the trials are in the pack."""

    def __init__(self, pack):
        self.pack, self.seen = pack, set()

    def __call__(self, *args, **kwargs):
        from transformers import TrainerCallback

        spy = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                spy.seen |= lora_dropout_probabilities(spy.pack._model)

        return Callback()


@pytest.mark.integration
def test_each_packed_trial_keeps_its_own_lora_dropout(fast_config, tmp_path):
    configs = [fast_config(lora__lora_dropout=0.1), fast_config(lora__lora_dropout=0.3, seed=1)]
    pack = TrainingPack(load_base_model(configs[0]), size=2)
    spy = _DropoutSpy(pack)
    reuse = TrialReuse()
    outcomes = []

    def train(config, index):
        outcomes.append(run_orpo(config, tmp_path / str(index), callbacks=[spy()], reuse=reuse, pack=pack))

    threads = [threading.Thread(target=train, args=(config, i)) for i, config in enumerate(configs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2
    assert spy.seen == {0.1, 0.3}  # TRL's disable_dropout would have zeroed both


@pytest.mark.parametrize("backward", [True, False])
def test_the_step_measure_counts_activations_once_and_keeps_none_alive(backward):
    """A step that never reaches its backward (its trial failed, its forward ran out of memory) must free its
    activations like any dropped graph; the measure must not hold them."""
    import gc
    import weakref

    from sweeper.training._pack import _KeptForBackward

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    inputs = torch.randn(4, 8)
    kept = _KeptForBackward(model)
    with kept:
        activation = model[1](model[0](inputs))  # tanh keeps its output for the backward
        output = model[2](activation)
    # the input (kept by the first layer) and tanh's output, each once; not the weights
    assert kept.bytes == inputs.nbytes + activation.nbytes
    if backward:
        output.sum().backward()
    alive = weakref.ref(activation)
    del activation, output
    gc.collect()
    assert alive() is None


def test_a_stand_in_model_holds_only_its_own_trials_adapter_weights(fast_config):
    config = fast_config()
    pack = TrainingPack(load_base_model(config), size=2)
    with pack.turn(), pack.member(config) as first, pack.member(fast_config(seed=1)) as second:
        assert isinstance(first, PackedTrialModel)
        own = {id(p) for p in first.parameters()}
        assert own and own.isdisjoint({id(p) for p in second.parameters()})
        trainable = {id(p) for p in pack._model.parameters() if p.requires_grad}
        assert trainable == own | {id(p) for p in second.parameters()}  # the base stays frozen


def test_a_packed_trials_adapters_start_where_a_solo_trials_do(fast_config):
    """The second trial's adapters join a model that already has some: PEFT must still draw them as it does alone."""
    first_config, second_config = fast_config(), fast_config(seed=7)
    set_seed(second_config.seed)
    alone = attach_lora(load_base_model(second_config), second_config)
    expected = {n.replace(".default.", "."): p.detach().clone() for n, p in alone.named_parameters() if p.requires_grad}
    pack = TrainingPack(load_base_model(first_config), size=2)
    with pack.turn(), pack.member(first_config), pack.member(second_config) as second:
        got = {n.removeprefix("adapter.").replace("__", ".").replace(".packed1.", "."): p for n, p in second.named_parameters()}
        assert sorted(got) == sorted(expected)
        for name, weight in got.items():
            assert torch.equal(weight, expected[name]), name


@pytest.mark.parametrize(
    ("override", "fix"),
    [
        ({"orpo__gradient_checkpointing": True}, "gradient checkpointing"),
        ({"compute__lean_orpo_forward": True, "lora__target_modules": ["q_proj", "lm_head"]},
         "the output layer cannot carry LoRA"),
        ({"lora__bias": "all"}, "lora.bias: none"),
    ],
)
def test_what_a_pack_cannot_train_is_refused_before_training(fast_config, override, fix):
    config = fast_config(**override)
    pack = TrainingPack(load_base_model(config), size=1)
    with pytest.raises(ConfigError, match="packed trials") as error, pack.turn(), pack.member(config):
        pass
    assert fix in str(error.value)


def test_a_pack_refuses_more_trials_than_its_size(fast_config):
    config = fast_config()
    pack = TrainingPack(load_base_model(config), size=1)
    with pack.turn(), pack.member(config):
        with pytest.raises(RuntimeError, match="already trains 1"), pack.member(config):
            pass
