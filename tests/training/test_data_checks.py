"""The data is checked as a whole before training: rows dropped for length per split, row caps counted after the
length filter, text the model cannot read, pairs that tokenize the same, and max_length against the model's
positions. No training here: the tiny model's tokenizer and config only."""

from __future__ import annotations

import json
import logging

import pytest

from sweeper.config import ConfigError
from sweeper.data import DataError
from sweeper.study import load_study_spec
from sweeper.sweep import check_study_inputs
from sweeper.training import prepare_pairs

SHORT = [{"prompt": f"sort the numbers : {i} {i + 1} =", "chosen": f" {i} {i + 1}", "rejected": f" {i + 1} {i}"}
         for i in range(10)]
HELD_OUT = [{"prompt": f"sort the numbers : {i + 1} {i} =", "chosen": f" {i} {i + 1}", "rejected": f" {i + 1} {i}"}
            for i in range(10)]  # validation rows that share none with SHORT
LONG = [{"prompt": "sort the numbers : " + " ".join(["3"] * 30) + f" {i} =", "chosen": " 3", "rejected": " 4"}
        for i in range(10)]


def _split_file(path, train, test):
    path.write_text(json.dumps({"train": train, "test": test}))
    return str(path)


def test_max_eval_rows_counts_rows_that_fit_after_the_length_filter(tmp_path, fast_config):
    source = _split_file(tmp_path / "d.json", SHORT, LONG[:5] + HELD_OUT[:5])
    config = fast_config(**{"data.source": source, "data.eval_split": "test", "data.max_eval_rows": 3,
                            "orpo.max_length": 24})
    pairs = prepare_pairs(config)
    assert len(pairs.validation) == 3  # was 0 eligible of the first 3 rows: the cap came before the filter
    assert pairs.checks[1].dropped == 5 and pairs.checks[1].rows == 3


def test_a_split_left_with_one_pair_is_refused_with_the_drops_named(tmp_path, fast_config):
    source = _split_file(tmp_path / "d.json", SHORT, LONG[:9] + HELD_OUT[:1])
    config = fast_config(**{"data.source": source, "data.eval_split": "test", "orpo.max_length": 24})
    with pytest.raises(DataError, match=r"1 validation pair\(s\) left; 9 were dropped .* orpo.max_length 24"):
        prepare_pairs(config)


def test_many_rows_dropped_for_length_is_a_warning_with_the_counts(tmp_path, fast_config):
    source = _split_file(tmp_path / "d.json", SHORT + LONG[:4], HELD_OUT[:5])
    pairs = prepare_pairs(fast_config(**{"data.source": source, "data.eval_split": "test", "orpo.max_length": 24}))
    assert any("4 of 14 training rows (29%) dropped" in warning for warning in pairs.warnings)
    assert not any("validation rows" in warning for warning in pairs.warnings)


def test_text_the_tokenizer_cannot_read_is_a_warning_and_indistinct_pairs_are_counted(tmp_path, fast_config):
    english = [{"prompt": f"which fruit is best {i} =", "chosen": " apples are best", "rejected": " pears are best"}
               for i in range(10)]
    source = _split_file(tmp_path / "d.json", english, [{**row, "prompt": row["prompt"] + " 7"} for row in english[:4]])
    pairs = prepare_pairs(fast_config(**{"data.source": source, "data.eval_split": "test"}))
    train = pairs.checks[0]
    assert train.unk_share > 0.5 and len(train.same_tokens) == 10
    assert any("of the training tokens are unknown" in warning for warning in pairs.warnings)
    assert any("10 of 10 training pairs have chosen and rejected that tokenize the same" in warning
               for warning in pairs.warnings)


def test_the_built_in_task_reads_cleanly(fast_config):
    pairs = prepare_pairs(fast_config())
    assert pairs.warnings == () and pairs.checks[0].unk_share == 0.0


def test_max_length_beyond_the_models_positions_is_refused(fast_config):
    with pytest.raises(ConfigError, match="orpo.max_length: 1024 exceeds the 256 positions"):
        prepare_pairs(fast_config(**{"orpo.max_length": 1024}))


def test_the_sweep_preflight_prints_the_data_line_and_its_warnings(tmp_path, write_fast_study, caplog):
    source = _split_file(tmp_path / "d.json", SHORT + LONG[:4], HELD_OUT[:5])
    study_file = write_fast_study(training={"data.source": source, "data.eval_split": "test", "orpo.max_length": 24})
    with caplog.at_level(logging.INFO, logger="sweeper.sweep._preflight"):
        check_study_inputs(load_study_spec(study_file))
    text = caplog.text
    assert "10 training and 5 validation pairs (4 and 0 dropped" in text
    assert "4 of 14 training rows (29%) dropped" in text


def test_the_byte_level_tiny_model_reads_real_text(tmp_path, fast_config):
    english = [{"prompt": f"Which fruit is best, case {i}?", "chosen": " Apples, crisp.", "rejected": " Pears, soft."}
               for i in range(10)]
    source = _split_file(tmp_path / "d.json", english[:7], english[7:])
    config = fast_config(**{"data.source": source, "data.eval_split": "test", "model.name": "builtin:tiny-llama-bytes",
                            "orpo.max_length": 96})
    pairs = prepare_pairs(config)
    assert pairs.warnings == () and pairs.checks[0].unk_share == 0.0 and pairs.checks[0].same_tokens == ()
    word_level = prepare_pairs(fast_config(**{"data.source": source, "data.eval_split": "test"}))
    assert any("builtin:tiny-llama-bytes reads any text" in warning for warning in word_level.warnings)


@pytest.mark.integration
def test_a_trial_trains_on_real_text_with_the_byte_level_tiny_model(tmp_path, fast_config):
    import math

    from sweeper.training import run_orpo

    english = [{"prompt": f"Question {i}: is the sky blue?", "chosen": " Yes, by day.", "rejected": " No."}
               for i in range(24)]
    source = _split_file(tmp_path / "d.json", english[:20], english[20:])
    config = fast_config(**{"data.source": source, "data.eval_split": "test", "model.name": "builtin:tiny-llama-bytes",
                            "orpo.max_length": 64, "orpo.max_steps": 4})
    result = run_orpo(config, tmp_path / "out")
    assert math.isfinite(result.eval_metrics["eval_loss"]) and result.train_rows == 20 and not result.notes
