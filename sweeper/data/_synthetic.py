"""The embedded preference task: sort a short list of numbers.

Prompt `sort the numbers : 7 2 9 =`, chosen ` 2 7 9`, rejected a wrong answer (the list unsorted, reversed, or sorted
with one number changed). Judging order needs only local context, so a tiny model learns it in seconds with a good
learning rate; spotting a changed number needs the prompt, which rewards further training. The training split is
small and a share of its pairs are flipped (label noise), so aggressive settings memorise the noise and training and
validation loss part ways; the validation split is clean.

`rejected` picks the kinds of wrong answer. The embedded default uses near misses only (one number changed): such a
rejected answer shares every other token with the chosen one, so pushing it down also pulls the chosen answer's
shared tokens down, and a wider margin costs validation NLL: the study's two objectives trade off.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .._cache import build_once, cache_dir
from ..config._training import BuiltinTaskSection

NUMBER_RANGE = 32  # the tiny tokenizer knows the words "0".."31"


def _wrong_answer(items: list[int], rng: random.Random, kinds: tuple[str, ...]) -> list[int]:
    answer = sorted(items)
    kind = rng.choice(kinds) if len(kinds) > 1 else kinds[0]
    if kind == "changed":
        position = rng.randrange(len(answer))
        replacement = rng.choice([n for n in range(NUMBER_RANGE) if n not in items])
        answer[position] = replacement
        return sorted(answer)
    candidate = answer[::-1] if kind == "reversed" else rng.sample(answer, len(answer))
    while candidate == answer:  # all-equal or an unlucky shuffle
        candidate = rng.sample(answer, len(answer)) if len(set(answer)) > 1 else answer[:-1] + [answer[-1] + 1]
    return candidate


def _pair(rng: random.Random, task: BuiltinTaskSection) -> dict[str, str]:
    size = rng.randint(task.min_items, task.max_items)
    items = rng.sample(range(NUMBER_RANGE - 1), size)
    words = lambda numbers: " ".join(str(n) for n in numbers)  # noqa: E731
    return {
        "prompt": f"sort the numbers : {words(items)} =",
        "chosen": f" {words(sorted(items))}",
        "rejected": f" {words(_wrong_answer(items, rng, tuple(task.rejected)))}",
    }


def synthetic_rows(task: BuiltinTaskSection) -> dict[str, list[dict[str, str]]]:
    """Both splits as lists of rows; a pure function of `task`. Prompts never repeat across splits."""
    rng = random.Random(task.seed)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    while len(rows) < task.n_train + task.n_eval:
        row = _pair(rng, task)
        if row["prompt"] not in seen:
            seen.add(row["prompt"])
            rows.append(row)
    train, validation = rows[: task.n_train], rows[task.n_train :]
    for row in rng.sample(train, round(task.label_noise * len(train))):
        row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    return {"train": train, "validation": validation}


def synthetic_task_files(task: BuiltinTaskSection) -> dict[str, Path]:
    """The task written as JSON Lines (built once, cached), so it loads like any local dataset."""
    key = json.dumps(task.model_dump(), sort_keys=True)
    from hashlib import sha256

    target = cache_dir() / "tasks" / f"sort-preference-{sha256(key.encode()).hexdigest()[:12]}"

    def build(folder: Path) -> None:
        for split, rows in synthetic_rows(task).items():
            with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row) + "\n")

    folder = build_once(target, build)
    return {"train": folder / "train.jsonl", "validation": folder / "validation.jsonl"}
