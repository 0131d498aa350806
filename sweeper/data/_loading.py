"""Loading preference data: built-in task, local files, or hub datasets, in any of TRL's three formats.

Formats (TRL's): explicit prompt with string chosen/rejected; conversational message lists (prompt, chosen and
rejected are lists of {role, content}); implicit prompt (only chosen/rejected, the prompt is their common prefix).
Every row is checked here, once, so training never meets a malformed row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import BUILTIN_TASK, ConfigError, shown_value
from ..config._training import DataSection
from ._synthetic import synthetic_task_files

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
ROLES = {"system", "user", "assistant", "tool"}


class DataError(ConfigError):
    """A dataset a person must fix: the message names the source, the row and what is wrong."""


@dataclass
class PreferenceData:
    train: Any  # datasets.Dataset with prompt (unless implicit), chosen, rejected
    validation: Any
    source: str
    conversational: bool
    fingerprint: str


def _load_split(section: DataSection, split: str) -> Any:
    import datasets

    source = section.source
    if source == BUILTIN_TASK:
        files = synthetic_task_files(section.builtin)
        return datasets.load_dataset("json", data_files={split: str(files[split])}, split=split)
    path = Path(source)
    if path.suffix in LOCAL_FORMATS or path.exists():
        if not path.is_file():
            raise DataError(f"data.source: {source}: no such file. Give a .jsonl, .json or .parquet file.")
        if path.suffix not in LOCAL_FORMATS:
            raise DataError(f"data.source: {source}: unsupported file type {path.suffix!r}; use .jsonl, .json or .parquet")
        if _is_blank(path):
            raise DataError(f"data.source: {source}: the file is empty; it needs one preference pair per row")
        split_keys = _split_keys(path)
        if split_keys is None and split == section.split != "train":
            raise DataError(
                f"data.split: {split!r}, but {source} holds one list of rows, not splits. Fix: remove data.split, "
                'or make the file a JSON object keyed by split, e.g. {"train": [...], "test": [...]}'
            )
        if split_keys is None and split != section.split:
            raise DataError(
                f"data.eval_split: {split!r}, but {source} holds one list of rows, not splits: validation would be "
                "the training rows themselves. Fix: remove data.eval_split (a validation share is then held out "
                "of the rows, see data.validation_fraction), or make the file a JSON object keyed by split, e.g. "
                '{"train": [...], "test": [...]}'
            )
        if split_keys is not None and split not in split_keys:
            field = "data.split" if split == section.split else "data.eval_split"
            raise DataError(
                f"{field}: {split!r} is not a split of {source}; its splits are {', '.join(map(repr, split_keys))}. "
                f"Fix: set {field} to one of them"
            )
        try:
            with _parser_log_silenced():
                if split_keys is not None:
                    return datasets.load_dataset("json", data_files=str(path), field=split, split="train")
                return datasets.load_dataset(LOCAL_FORMATS[path.suffix], data_files=str(path), split="train")
        except Exception as error:  # pyarrow/json parse errors carry the detail we pass on
            raise DataError(
                f"data.source: {source}: could not be read as {path.suffix}: {_unreadable_detail(path, error)}. "
                "Fix: correct the file there (.jsonl holds one JSON object per line)"
            ) from None
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as error:
        raise DataError(
            f"data.source: {source!r} (split {split!r}) could not be loaded from the hub or its cache: "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}. "
            "Without network access, point data.source at a local .jsonl/.json/.parquet file."
        ) from None


def _split_keys(path: Path) -> list[str] | None:
    """The split names of a .json file whose top level is an object of row lists, else None (one list of rows)."""
    if path.suffix != ".json":
        return None
    with path.open("rb") as file:
        first = file.read(4096).lstrip()[:1]
    if first != b"{":
        return None
    try:
        with path.open(encoding="utf-8") as file:
            top = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # the reader below reports where the file stops parsing
    lists = [key for key, value in top.items() if isinstance(value, list)]
    if not lists:
        raise DataError(
            f"data.source: {path}: the top level is a JSON object with no list of rows under any key (keys: "
            f"{', '.join(map(repr, list(top)[:10])) or 'none'}). Fix: put the rows in a list, as .jsonl (one object "
            'per line) or as {"train": [rows...]}'
        )
    return lists


def _is_blank(path: Path) -> bool:
    # a file of blank lines reads as "no data" deep inside datasets; say so plainly instead
    size = path.stat().st_size
    return size == 0 or (size < 65536 and not path.read_bytes().strip())


@contextlib.contextmanager
def _parser_log_silenced() -> Iterator[None]:
    """datasets logs a parse error before raising it; the DataError raised from it says the same, once."""
    parser_log = logging.getLogger("datasets.packaged_modules.json.json")
    level = parser_log.level
    parser_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        parser_log.setLevel(level)


def _unreadable_detail(path: Path, error: Exception) -> str:
    """The first line of a JSON Lines file that does not parse, else the innermost error's message."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    json.loads(line.strip())
                except json.JSONDecodeError as decode_error:
                    return f"line {number} is not valid JSON ({decode_error.msg} at column {decode_error.colno})"
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return " ".join(str(error).split()) or type(error).__name__


# sharegpt-style speakers (`from`/`value` messages, as in many DPO sets) -> TRL's roles
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
                  "tool": "tool", "function_call": "assistant", "observation": "tool"}


def _column_value(row: dict[str, Any], column: str) -> Any:
    """A row's value at a column path: `chosen` or, into nested mappings, `chosen.value`."""
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _sharegpt_to_messages(value: Any) -> Any:
    """`{from, value}` messages (one, or a list) as TRL's `{role, content}` list; anything else unchanged."""
    if isinstance(value, dict) and {"from", "value"} <= set(value) and "role" not in value:
        value = [value]
    if (
        isinstance(value, list) and value
        and all(isinstance(m, dict) and {"from", "value"} <= set(m) and "role" not in m for m in value)
    ):
        return [{"role": SHAREGPT_ROLES.get(str(m["from"]), str(m["from"])), "content": m["value"]} for m in value]
    if isinstance(value, dict) and {"role", "content"} <= set(value):
        return [value]  # a single message where a list is expected
    return value


def _rename_columns(dataset: Any, section: DataSection) -> Any:
    """The data's columns as TRL's prompt/chosen/rejected: renamed per data.columns, dotted paths read into nested
    mappings, sharegpt `{from, value}` messages turned into `{role, content}` ones."""
    mapping = section.columns.model_dump()
    wanted = {role: column for role, column in mapping.items() if column is not None}
    present = set(dataset.column_names)
    missing = [
        f"{role} (column {column!r})" for role, column in wanted.items() if column.split(".")[0] not in present
    ]
    if missing:
        implicit = "" if section.columns.prompt is None else (
            "; data with no prompt column (the prompt is the common start of chosen and rejected) takes "
            "columns: {prompt: null}"
        )
        raise DataError(
            f"data.source: {section.source}: missing {', '.join(missing)}; the data has columns "
            f"{dataset.column_names}. Map them with data.columns, e.g. columns: {{prompt: question}} or, into "
            f"nested fields, {{chosen: chosen.value}}{implicit}."
        )

    def to_trl(row: dict[str, Any]) -> dict[str, Any]:
        return {role: _sharegpt_to_messages(_column_value(row, column)) for role, column in wanted.items()}

    sample = [to_trl(row) for row in dataset.select(range(min(len(dataset), 100)))]
    plain = all(column in present for column in wanted.values()) and all(
        sample[index][role] == dataset[index][column] for index in range(len(sample)) for role, column in wanted.items()
    )
    if plain:  # the usual case: a rename, done by Arrow without touching the rows
        renames = {column: role for role, column in wanted.items() if column != role}
        clashes = [role for column, role in renames.items() if role in dataset.column_names]
        if clashes:
            dataset = dataset.remove_columns(clashes)
        dataset = dataset.rename_columns(renames) if renames else dataset
        return dataset.select_columns(list(wanted))
    rows = [to_trl(row) for row in dataset]
    import datasets

    return datasets.Dataset.from_list(rows)


def _message_problem(value: Any, field: str) -> str | None:
    if not value:
        return f"`{field}` is an empty message list"
    for index, message in enumerate(value):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return f"message {index} of `{field}` is not a {{role, content}} mapping"
        if message["role"] not in ROLES:
            return f"message {index} of `{field}` has role {message['role']!r}; use one of {sorted(ROLES)}"
        if not isinstance(message["content"], str):
            return f"message {index} of `{field}` has non-string content ({type(message['content']).__name__})"
        if not message["content"].strip():
            return f"message {index} of `{field}` has empty content"
    return None


def row_problem(row: dict[str, Any], implicit_prompt: bool) -> str | None:
    """What is wrong with one row, or None. Formats may not be mixed inside a row."""
    fields = ("chosen", "rejected") if implicit_prompt else ("prompt", "chosen", "rejected")
    kinds = set()
    for field in fields:
        value = row.get(field)
        if value is None:
            return f"`{field}` is missing (null)"
        if isinstance(value, str):
            if not value.strip():
                return f"`{field}` is an empty string"
            kinds.add("text")
        elif isinstance(value, list):
            problem = _message_problem(value, field)
            if problem:
                return problem
            kinds.add("messages")
        else:
            return f"`{field}` is {type(value).__name__} ({shown_value(value)}); expected a string or a list of messages"
    if len(kinds) > 1:
        return "mixes plain strings and message lists; use one format for prompt, chosen and rejected"
    if row.get("chosen") == row.get("rejected"):
        return "`chosen` and `rejected` are identical, so there is no preference to learn"
    return None


MAX_LISTED_ROWS = 5  # row numbers named per problem; the count covers them all
_VALUE_IN_MESSAGE = re.compile(r"\(.*\)")  # the value a message quotes: rows differing only there share a problem


def _rows_named(indices: list[int]) -> str:
    listed = ", ".join(map(str, indices[:MAX_LISTED_ROWS])) + (", ..." if len(indices) > MAX_LISTED_ROWS else "")
    return f"row {listed}" if len(indices) == 1 else f"{len(indices)} rows ({listed})"


def _row_format(row: dict[str, Any]) -> str:
    return "message lists" if isinstance(row.get("chosen"), list) else "plain strings"


def _user_columns_named(problem: str, section: DataSection) -> str:
    """A problem in the user's words: `prompt` -> `prompt` (column 'conversations') where data.columns maps it."""
    for role, column in section.columns.model_dump().items():
        if column is not None and column != role:
            problem = problem.replace(f"`{role}`", f"`{role}` (column {column!r})")
    return problem


def _validate_rows(dataset: Any, source: str, implicit_prompt: bool, section: DataSection | None = None) -> None:
    """Every row checked, one error for the file: each problem with its count and first rows, and a fix that fits
    (a problem on every row points at the column mapping or the format, not at the rows)."""
    if len(dataset) == 0:
        raise DataError(f"data.source: {source}: no rows; it needs one preference pair per row")
    problems: dict[str, tuple[str, list[int]]] = {}  # kind (values left out) -> (first row's message, rows)
    formats: dict[str, list[int]] = {}
    for index, row in enumerate(dataset):
        problem = row_problem(row, implicit_prompt)
        if problem:
            if section is not None:
                problem = _user_columns_named(problem, section)
            problems.setdefault(_VALUE_IN_MESSAGE.sub("(...)", problem), (problem, []))[1].append(index)
        else:
            formats.setdefault(_row_format(row), []).append(index)
    if problems:
        rows = sorted(index for _, indices in problems.values() for index in indices)
        listed = "; ".join(
            f"{_rows_named(indices)}: {problem}" for problem, indices in list(problems.values())[:5]
        )
        if len(rows) == len(dataset) and len(dataset) > 1:
            fix = ("every row has a problem, so the file's format or the column mapping is likely wrong. Fix: check "
                   "data.columns against the file, and the format README.md describes (TRL's prompt/chosen/rejected, "
                   "strings or {role, content} messages)")
        else:
            fix = "Fix: correct or remove that row" if len(rows) == 1 else "Fix: correct or remove those rows"
        raise DataError(f"data.source: {source}: {listed} (counting from 0). {fix}")
    if len(formats) > 1:
        described = " and ".join(f"{_rows_named(indices)} hold {kind}" for kind, indices in formats.items())
        raise DataError(
            f"data.source: {source}: rows mix formats: {described} (counting from 0); plain-string rows would "
            "train without the chat template. Fix: use one format in the whole file"
        )


def _row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def check_no_leak(train: Any, validation: Any, source: str) -> None:
    """Validation rows that also occur in training (same prompt, chosen and rejected) measure memory, not
    generalisation: the gap and every validation objective would be wrong without a sign. Compared by content."""
    seen = {_row_key(row) for row in train}
    leaked = [index for index, row in enumerate(validation) if _row_key(row) in seen]
    if leaked:
        first = ", ".join(map(str, leaked[:5])) + (", ..." if len(leaked) > 5 else "")
        raise DataError(
            f"data.source: {source}: {len(leaked)} of {len(validation)} validation rows also occur in the training "
            f"rows (validation rows {first}, counting from 0): validation would measure memorisation. Fix: remove "
            "duplicate rows from the data, or name a validation split that shares no rows with the training split"
        )


def _fingerprint(*datasets_: Any) -> str:
    digest = hashlib.sha256()
    for dataset in datasets_:
        for row in dataset:
            digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def load_preference_data(section: DataSection) -> PreferenceData:
    """Both splits, validated row by row, the validation split deterministic when the data has none."""
    implicit_prompt = section.columns.prompt is None
    train = _rename_columns(_load_split(section, section.split), section)
    _validate_rows(train, section.source, implicit_prompt, section)
    eval_split = section.eval_split or ("validation" if section.source == BUILTIN_TASK else None)
    if eval_split is not None:
        validation = _rename_columns(_load_split(section, eval_split), section)
        _validate_rows(validation, f"{section.source} [{eval_split}]", implicit_prompt, section)
    else:
        if len(train) < 2:
            raise DataError(
                f"data.source: {section.source}: {len(train)} row(s) cannot be split into train and validation. "
                "Fix: add rows, or name a validation split with data.eval_split"
            )
        parts = train.train_test_split(test_size=section.validation_fraction, seed=section.split_seed, shuffle=True)
        train, validation = parts["train"], parts["test"]
    check_no_leak(train, validation, section.source)
    # max_train_rows / max_eval_rows are applied after the length filter (`drop_long_prompts`), so that a cap
    # counts rows that can train
    conversational = isinstance(train[0]["chosen"], list)
    return PreferenceData(train, validation, section.source, conversational, _fingerprint(train, validation))


def prompt_token_count(prompt: str, tokenizer: Any) -> int:
    """Tokens TRL's ORPO tokenisation gives the prompt, counting the BOS it prepends when missing."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return len(ids) + (1 if bos is not None and (not ids or ids[0] != bos) else 0)


def drop_long_prompts(
    dataset: Any, tokenizer: Any, max_length: int, keep_at_most: int | None = None
) -> tuple[Any, int]:
    """Drop rows whose prompt alone fills `max_length`. TRL truncates only the completion, so such a row would
    keep an empty completion and turn the loss into NaN. Expects explicit text prompts (after templating).
    With `keep_at_most`, the first that many rows that fit are kept and the rest is not read; the count of drops
    covers the rows read."""
    kept: list[int] = []
    dropped = 0
    for index, prompt in enumerate(dataset["prompt"]):
        if keep_at_most is not None and len(kept) >= keep_at_most:
            break
        if prompt_token_count(prompt, tokenizer) < max_length:
            kept.append(index)
        else:
            dropped += 1
    if len(kept) != len(dataset):
        dataset = dataset.select(kept)
    return dataset, dropped


@dataclass(frozen=True)
class SplitCheck:
    """One split as the trainer will see it: rows kept, rows dropped for length, and whether the model can read
    its text (`unk_share`: the share of its tokens that are the tokenizer's unknown token)."""

    name: str
    rows: int
    dropped: int
    unk_share: float
    same_tokens: tuple[int, ...]  # rows (counting from 0, after drops) whose chosen and rejected tokenize the same

    @property
    def dropped_share(self) -> float:
        return self.dropped / (self.rows + self.dropped) if self.rows + self.dropped else 0.0


UNK_WARNING_SHARE = 0.05  # above this share of unknown tokens the model reads a different text than the data
DROPPED_WARNING_SHARE = 0.2  # above this share of rows dropped for length the split no longer represents the data
MIN_SPLIT_ROWS = 2  # a split left with fewer pairs than this cannot measure anything


def check_split(name: str, dataset: Any, dropped: int, tokenizer: Any) -> SplitCheck:
    """Tokenize the split once as a whole (explicit text prompts, after templating) and count what it hides."""
    unk = tokenizer.unk_token_id
    encode = lambda texts: tokenizer(list(texts), add_special_tokens=False)["input_ids"]  # noqa: E731
    chosen, rejected = encode(dataset["chosen"]), encode(dataset["rejected"])
    prompts = encode(dataset["prompt"])
    same = tuple(index for index, (good, bad) in enumerate(zip(chosen, rejected, strict=True)) if good == bad)
    total = sum(len(ids) for part in (prompts, chosen, rejected) for ids in part)
    unknown = 0 if unk is None else sum(ids.count(unk) for part in (prompts, chosen, rejected) for ids in part)
    return SplitCheck(name, len(dataset), dropped, unknown / total if total else 0.0, same)


def data_warnings(checks: list[SplitCheck], source: str, model: str) -> list[str]:
    """What a user should know before trusting a sweep on this data; each names the count and the fix."""
    warnings_ = []
    for check in checks:
        if check.dropped_share > DROPPED_WARNING_SHARE:
            warnings_.append(
                f"data.source: {source}: {check.dropped} of {check.rows + check.dropped} {check.name} rows "
                f"({check.dropped_share:.0%}) dropped because their prompt fills orpo.max_length; the rest may not "
                "represent the data. Fix: raise orpo.max_length or shorten the prompts"
            )
        if check.unk_share > UNK_WARNING_SHARE:
            warnings_.append(
                f"data.source: {source}: {check.unk_share:.0%} of the {check.name} tokens are unknown to model "
                f"{model}'s tokenizer: the model reads a different text than the data. Fix: use a model whose "
                "vocabulary covers the data (offline, builtin:tiny-llama-bytes reads any text)"
            )
        if check.same_tokens:
            first = ", ".join(map(str, check.same_tokens[:5])) + (", ..." if len(check.same_tokens) > 5 else "")
            warnings_.append(
                f"data.source: {source}: {len(check.same_tokens)} of {check.rows} {check.name} pairs have chosen "
                f"and rejected that tokenize the same (rows {first}, after drops, counting from 0): they teach no "
                "preference. Fix: use a model whose tokenizer tells them apart, or remove those rows"
            )
    return warnings_


def check_split_sizes(checks: list[SplitCheck], source: str, max_length: int) -> None:
    for check in checks:
        if check.rows < MIN_SPLIT_ROWS:
            cause = (
                f"; {check.dropped} were dropped because their prompt fills orpo.max_length {max_length}"
                if check.dropped else ""
            )
            raise DataError(
                f"data.source: {source}: {check.rows} {check.name} pair(s) left{cause}; a split needs at least "
                f"{MIN_SPLIT_ROWS} to measure anything. Fix: raise orpo.max_length, shorten the prompts or add rows"
            )
