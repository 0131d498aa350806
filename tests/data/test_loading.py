import json

import pytest

from sweeper.config._training import BuiltinTaskSection, DataSection
from sweeper.data import DataError, drop_long_prompts, load_preference_data, synthetic_rows
from sweeper.model import build_tokenizer

EXPLICIT = [{"prompt": f"sort the numbers : {i} {i + 1} =", "chosen": f" {i} {i + 1}", "rejected": f" {i + 1} {i}"} for i in range(10)]
CONVERSATIONAL = [
    {
        "prompt": [{"role": "user", "content": f"sort the numbers : {i + 1} {i} ="}],
        "chosen": [{"role": "assistant", "content": f"{i} {i + 1}"}],
        "rejected": [{"role": "assistant", "content": f"{i + 1} {i}"}],
    }
    for i in range(10)
]
IMPLICIT = [{"chosen": f"sort the numbers : {i} 20 = {i} 20", "rejected": f"sort the numbers : {i} 20 = 20 {i}"} for i in range(10)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def section(source, **fields):
    return DataSection(source=str(source), **fields)


@pytest.mark.parametrize(
    "rows, extra, conversational",
    [(EXPLICIT, {}, False), (CONVERSATIONAL, {}, True), (IMPLICIT, {"columns": {"prompt": None}}, False)],
    ids=["explicit", "conversational", "implicit"],
)
def test_each_trl_format_loads_and_splits(tmp_path, rows, extra, conversational):
    data = load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows), validation_fraction=0.2, **extra))
    assert len(data.train) == 8 and len(data.validation) == 2
    assert data.conversational is conversational


def test_parquet_and_json_files_load(tmp_path):
    import datasets

    datasets.Dataset.from_list(EXPLICIT).to_parquet(str(tmp_path / "d.parquet"))
    (tmp_path / "d.json").write_text(json.dumps(EXPLICIT))
    for name in ("d.parquet", "d.json"):
        assert len(load_preference_data(section(tmp_path / name)).train) == 9


def test_split_is_deterministic_and_seeded(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", EXPLICIT)
    first = load_preference_data(section(path, validation_fraction=0.3))
    again = load_preference_data(section(path, validation_fraction=0.3))
    other = load_preference_data(section(path, validation_fraction=0.3, split_seed=7))
    assert first.validation["prompt"] == again.validation["prompt"]
    assert first.fingerprint == again.fingerprint != other.fingerprint


def test_column_mapping_renames(tmp_path):
    rows = [{"q": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in EXPLICIT]
    data = load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows), columns={"prompt": "q", "chosen": "good", "rejected": "bad"}))
    assert data.train.column_names == ["prompt", "chosen", "rejected"]


def test_missing_column_lists_the_columns_there(tmp_path):
    rows = [{"prompt": r["prompt"], "good": r["chosen"], "rejected": r["rejected"]} for r in EXPLICIT]
    with pytest.raises(DataError, match=r"missing chosen \(column 'chosen'\).*'good'.*data.columns"):
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"prompt": "p", "chosen": 3, "rejected": "r"}, "`chosen` is int"),
        ({"prompt": "p", "chosen": "", "rejected": "r"}, "`chosen` is an empty string"),
        ({"prompt": "p", "chosen": "c", "rejected": None}, "`rejected` is missing"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "identical"),
    ],
)
def test_bad_text_rows_name_their_index(tmp_path, bad_row, message):
    rows = EXPLICIT[:5] + [bad_row] + EXPLICIT[5:]
    with pytest.raises(DataError) as caught:
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))
    assert "row 5" in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"prompt": [{"role": "user", "content": "p"}], "chosen": [], "rejected": [{"role": "assistant", "content": "r"}]}, "empty message list"),
        ({"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "robot", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}, "role 'robot'"),
        ({"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "assistant", "content": " "}], "rejected": [{"role": "assistant", "content": "r"}]}, "message 0 of `chosen` has empty content"),
    ],
)
def test_bad_message_rows_name_their_index(tmp_path, bad_row, message):
    rows = CONVERSATIONAL[:2] + [bad_row]
    with pytest.raises(DataError) as caught:
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))
    assert "row 2" in str(caught.value) and message in str(caught.value)


def test_mixed_formats_in_a_row_are_rejected():
    from sweeper.data import row_problem

    row = {"prompt": "p", "chosen": [{"role": "assistant", "content": "c"}], "rejected": [{"role": "assistant", "content": "r"}]}
    assert "mixes plain strings and message lists" in row_problem(row, implicit_prompt=False)


@pytest.mark.parametrize("name, content, message", [("empty.jsonl", "", "empty"), ("d.csv", "a,b\n", "unsupported file type")])
def test_bad_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        load_preference_data(section(tmp_path / name))


@pytest.mark.integration
def test_missing_file_and_unreachable_hub_dataset(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_preference_data(section(tmp_path / "absent.jsonl"))
    with pytest.raises(DataError, match="local .jsonl"):
        load_preference_data(section("no-such-owner/no-such-dataset-sweeper-test"))


def test_long_prompts_are_dropped_and_counted():
    import datasets

    tokenizer = build_tokenizer()
    rows = [
        {"prompt": "sort the numbers : 1 2 =", "chosen": " 1 2", "rejected": " 2 1"},  # 6 tokens + BOS
        {"prompt": "sort the numbers : " + " ".join(["3"] * 20) + " =", "chosen": " 3", "rejected": " 4"},
    ]
    kept, dropped = drop_long_prompts(datasets.Dataset.from_list(rows), tokenizer, max_length=10)
    assert dropped == 1 and kept["prompt"] == [rows[0]["prompt"]]
    # exactly at the limit: the prompt (with BOS) fills max_length and leaves no completion token
    kept, dropped = drop_long_prompts(datasets.Dataset.from_list(rows[:1]), tokenizer, max_length=7)
    assert dropped == 1 and len(kept) == 0


def test_synthetic_task_is_deterministic_noisy_and_disjoint():
    task = BuiltinTaskSection(n_train=100, n_eval=50, label_noise=0.2, seed=3)
    first, again = synthetic_rows(task), synthetic_rows(task)
    assert first == again
    assert synthetic_rows(task.model_copy(update={"seed": 4})) != first
    prompts = lambda rows: {row["prompt"] for row in rows}  # noqa: E731
    assert not prompts(first["train"]) & prompts(first["validation"])

    def correct(row):
        items = row["prompt"].split(":")[1].removesuffix("=").split()
        return row["chosen"].split() == sorted(items, key=int)

    assert sum(not correct(row) for row in first["train"]) == 20  # exactly the flipped pairs
    assert all(correct(row) for row in first["validation"])


def test_the_builtin_tasks_wrong_answers_are_the_kinds_asked_for():
    def kind(row):  # of a clean pair's rejected answer
        items = sorted(int(n) for n in row["prompt"].split(":")[1].removesuffix("=").split())
        rejected = [int(n) for n in row["rejected"].split()]
        if sorted(rejected) == items:
            return "reversed" if rejected == items[::-1] else "shuffled"
        changed = [a != b for a, b in zip(rejected, items)]
        assert rejected == sorted(rejected) and len(rejected) == len(items) and len(set(rejected) - set(items)) == 1
        return "changed" if any(changed) else "same"

    near = synthetic_rows(BuiltinTaskSection(n_train=60, n_eval=60, rejected=["changed"]))
    assert {kind(row) for row in near["validation"]} == {"changed"}  # near misses only: one number replaced
    every = synthetic_rows(BuiltinTaskSection(n_train=60, n_eval=60))
    assert {kind(row) for row in every["validation"]} == {"shuffled", "reversed", "changed"}
    with pytest.raises(ValueError, match="rejected"):
        BuiltinTaskSection(rejected=["swapped"])
    with pytest.raises(ValueError, match="rejected"):
        BuiltinTaskSection(rejected=[])


def test_builtin_source_loads_through_the_file_loader():
    data = load_preference_data(DataSection())
    assert len(data.train) == 192 and len(data.validation) == 128  # the built-in defaults, not configs/tiny.yaml


def test_a_split_keyed_json_file_gives_its_splits(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": EXPLICIT[:8], "test": EXPLICIT[8:]}))
    data = load_preference_data(section(path, eval_split="test"))
    assert data.train["prompt"] == [row["prompt"] for row in EXPLICIT[:8]]
    assert data.validation["prompt"] == [row["prompt"] for row in EXPLICIT[8:]]


def test_a_split_missing_from_a_split_keyed_file_names_the_splits_there(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": EXPLICIT[:8], "validation": EXPLICIT[8:]}))
    with pytest.raises(DataError, match=r"data.eval_split: 'test' is not a split of .*'train', 'validation'"):
        load_preference_data(section(path, eval_split="test"))


def test_an_eval_split_on_a_file_with_one_list_of_rows_is_refused_not_leaked(tmp_path):
    """Once, eval_split on a .jsonl made validation the training rows themselves (1094/1094), silently."""
    path = write_jsonl(tmp_path / "d.jsonl", EXPLICIT)
    with pytest.raises(DataError, match="data.eval_split: 'test'.*validation would be the training rows"):
        load_preference_data(section(path, eval_split="test"))
    with pytest.raises(DataError, match="data.split: 'test'.*one list of rows"):
        load_preference_data(section(path, split="test"))


def test_validation_rows_that_occur_in_training_are_refused_with_a_count(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": EXPLICIT[:8], "test": EXPLICIT[6:]}))  # rows 6 and 7 in both
    with pytest.raises(DataError, match=r"2 of 4 validation rows also occur in the training rows \(validation rows 0, 1"):
        load_preference_data(section(path, eval_split="test"))


def test_duplicated_rows_that_a_held_out_share_would_leak_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", EXPLICIT + EXPLICIT)  # every row twice
    with pytest.raises(DataError, match="validation rows also occur in the training rows"):
        load_preference_data(section(path, validation_fraction=0.5))


def test_the_builtin_task_has_no_validation_row_in_training():
    data = load_preference_data(DataSection())
    train = {json.dumps(row, sort_keys=True) for row in data.train}
    assert not any(json.dumps(row, sort_keys=True) in train for row in data.validation)


def test_every_bad_row_of_a_file_is_counted_in_one_error(tmp_path):
    identical = [{"prompt": f"p {i}", "chosen": "same", "rejected": "same"} for i in range(7)]
    rows = EXPLICIT[:3] + identical[:3] + [{"prompt": "p", "chosen": "", "rejected": "r"}] + identical[3:]
    with pytest.raises(DataError) as caught:
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))
    message = str(caught.value)
    assert "7 rows (3, 4, 5, 7, 8, ...): `chosen` and `rejected` are identical" in message
    assert "row 6: `chosen` is an empty string" in message and "Fix: correct or remove those rows" in message


def test_a_problem_on_every_row_points_at_the_format_not_the_rows(tmp_path):
    wrapped = [{"prompt": f"p {i}", "chosen": {"text": "a"}, "rejected": {"text": "b"}} for i in range(4)]
    with pytest.raises(DataError) as caught:
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", wrapped)))
    message = str(caught.value)
    assert "4 rows (0, 1, 2, 3): `chosen` is dict" in message and "check data.columns" in message
    assert "correct or remove" not in message


def test_rows_in_two_formats_are_refused(tmp_path):
    rows = CONVERSATIONAL[:6] + EXPLICIT[:4]
    with pytest.raises(DataError, match=r"rows mix formats: 6 rows \(0, 1, 2, 3, 4, \.\.\.\) hold message lists and "
                                         r"4 rows \(6, 7, 8, 9\) hold plain strings"):
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))


def test_sharegpt_messages_load_as_conversations(tmp_path):
    rows = [
        {
            "conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": f"sort {i + 1} {i}"}],
            "chosen": {"from": "gpt", "value": f"{i} {i + 1}"},
            "rejected": {"from": "gpt", "value": f"{i + 1} {i}"},
        }
        for i in range(10)
    ]
    data = load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows), columns={"prompt": "conversations"}))
    assert data.conversational
    (row,) = [r for r in [*data.train, *data.validation] if r["prompt"][1]["content"] == "sort 1 0"]
    assert row["prompt"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "sort 1 0"}]
    assert row["chosen"] == [{"role": "assistant", "content": "0 1"}]


def test_dotted_column_paths_read_nested_fields(tmp_path):
    rows = [{"q": {"text": f"sort {i} {i + 1} ="}, "a": {"good": f" {i} {i + 1}", "bad": f" {i + 1} {i}"}}
            for i in range(10)]
    columns = {"prompt": "q.text", "chosen": "a.good", "rejected": "a.bad"}
    data = load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows), columns=columns))
    assert sorted(data.train.column_names) == ["chosen", "prompt", "rejected"]
    assert all(row["prompt"].startswith("sort") and row["chosen"].startswith(" ") for row in data.train)


def test_a_missing_column_hint_offers_the_implicit_prompt_format(tmp_path):
    rows = [{"chosen": f"a {i}", "rejected": f"b {i}"} for i in range(4)]
    with pytest.raises(DataError, match=r"missing prompt \(column 'prompt'\).*columns: \{prompt: null\}"):
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows)))


def test_a_bad_row_names_the_users_column(tmp_path):
    rows = [{"question": f"q {i}", "good": f"a {i}", "bad": f"b {i}"} for i in range(5)]
    rows[3]["good"] = ""
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    with pytest.raises(DataError, match=r"row 3: `chosen` \(column 'good'\) is an empty string"):
        load_preference_data(section(write_jsonl(tmp_path / "d.jsonl", rows), columns=columns))
