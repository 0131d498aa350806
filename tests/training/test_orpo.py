"""Real tiny ORPO trials on the CPU through TRL (integration tier)."""

import json
import math

import pytest
from transformers import TrainerCallback

from sweeper.metrics import EVAL, ORPO_METRICS, TRAIN
from sweeper.training import NonFiniteLossError, run_orpo
from sweeper.training._trl import lora_dropout_probabilities

pytestmark = pytest.mark.integration


def test_tiny_trial_reports_every_metric_train_and_eval_finite(fast_config, tmp_path):
    result = run_orpo(fast_config(), tmp_path)
    for name in ORPO_METRICS:
        assert math.isfinite(result.train_metrics[name]), name
        assert math.isfinite(result.eval_metrics[f"eval_{name}"]), name
    for name in ("runtime", "samples_per_second", "steps_per_second"):
        assert result.train_metrics[f"train_{name}"] > 0
        assert result.eval_metrics[f"eval_{name}"] > 0
    assert result.global_steps == 8
    # curves: a train point every 2 steps, an eval point at 0 (before training), 4 and 8
    assert [step for step, _ in result.curve("loss", TRAIN)] == [2, 4, 6, 8]
    assert [step for step, _ in result.curve("rewards/margins", EVAL)] == [0, 4, 8]
    assert {p.metric for p in result.curves if p.split == EVAL} >= set(ORPO_METRICS)


class _DropoutSpy(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.lora_p = lora_dropout_probabilities(model)
        self.other_p = {m.p for n, m in model.named_modules() if type(m).__name__ == "Dropout" and "lora_dropout" not in n}
        self.training = model.training


def test_lora_dropout_has_the_configured_p_inside_the_trainer(fast_config, tmp_path):
    spy = _DropoutSpy()
    run_orpo(fast_config(lora__lora_dropout=0.25), tmp_path, callbacks=[spy])
    # TRL's default disable_dropout would have set these to 0
    assert spy.lora_p == {0.25}
    assert spy.other_p <= {0.0}


def test_same_config_and_seed_give_identical_metrics(fast_config, tmp_path):
    first = run_orpo(fast_config(), tmp_path / "a")
    second = run_orpo(fast_config(), tmp_path / "b")
    strip = lambda metrics: {k: v for k, v in metrics.items() if "runtime" not in k and "per_second" not in k}  # noqa: E731
    assert strip(first.eval_metrics) == strip(second.eval_metrics)
    assert strip(first.train_metrics) == strip(second.train_metrics)
    other_seed = run_orpo(fast_config(seed=1), tmp_path / "c")
    assert other_seed.eval_metrics["eval_loss"] != first.eval_metrics["eval_loss"]


def test_a_config_built_to_diverge_fails_with_non_finite_loss(fast_config, tmp_path):
    # an absurd step size with clipping off overflows the adapters within a step or two
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        run_orpo(fast_config(orpo__learning_rate=1e30, orpo__max_grad_norm=0), tmp_path)


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


@pytest.mark.parametrize("kind", ["conversational", "implicit"])
def test_other_trl_formats_train(fast_config, tmp_path, kind):
    from sweeper.data import synthetic_rows
    from sweeper.config._training import BuiltinTaskSection

    rows = synthetic_rows(BuiltinTaskSection(n_train=40, n_eval=1))["train"]
    if kind == "conversational":
        rows = [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"].strip()}],
                "rejected": [{"role": "assistant", "content": r["rejected"].strip()}],
            }
            for r in rows
        ]
        extra = {}
    else:
        rows = [{"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]} for r in rows]
        extra = {"data.columns.prompt": None}
    config = fast_config(**{"data.source": _write(tmp_path / "d.jsonl", rows), **extra})
    result = run_orpo(config, tmp_path / "out")
    assert math.isfinite(result.eval_metrics["eval_loss"]) and result.train_rows == 36


def test_long_prompts_are_dropped_before_training_and_counted(fast_config, tmp_path):
    rows = [  # distinct rows: a copy in both splits would be refused as a leak
        row
        for i in range(20)  # 40 rows: the validation share (4) keeps the 2 pairs a split needs
        for row in (
            {"prompt": f"sort the numbers : 3 1 {i} =", "chosen": f" 1 {i} 3", "rejected": f" 3 {i} 1"},
            {"prompt": "sort the numbers : " + " ".join(["5"] * 30) + f" {i} =", "chosen": " 5", "rejected": " 4"},
        )
    ]
    config = fast_config(**{"data.source": _write(tmp_path / "d.jsonl", rows), "orpo.max_length": 24})
    result = run_orpo(config, tmp_path / "out")
    assert result.dropped_long_prompts == 20
    assert math.isfinite(result.eval_metrics["eval_loss"])
