"""What a worker's first read of a large study spends on user attributes, and what other layouts would spend: the
floor under the first TPE suggestion at 10,000 real-size trials (issue 17's 1 s target, 1.6 s measured).

    .venv/bin/python bench/attribute_read.py STUDY.db [--rounds 3]

STUDY.db: a SQLite file of real-size trials, e.g. one `bench/pruning_decision.py --keep FILE` built (50 user
attributes per trial, 35 of them final train_/eval_ metrics). Every way decodes every user attribute of every trial
of the file into one dict per trial, in CPU seconds, the ways alternating within each round:
  rows        the queries and decoding of sweeper's column read (`_trial_details`) in plain sqlite3, without
              SQLAlchemy: 500 trial ids per query, rows in row-id order, the texts decoded by `json_values`, a
              dict entry set per row
  aggregated  the same trials, each trial's attributes concatenated into one JSON object by SQLite
              (group_concat of json_quote(key) || ':' || value_json), one text per trial to decode
  merged      a copy of the attributes with a trial's 35 final metrics stored as one attribute holding a dict
              (15 rows per trial instead of 50), read as `rows` reads: what storing the metrics as one attribute
              would cost (built once, in a temporary file; not sweeper's layout, see docs/scaling.md)
The three must decode to the same values (the merged one's metrics flattened back); the bench checks it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _spread import spread  # noqa: E402  (bench/, this script's folder)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's sweeper, whichever one the environment installed
from sweeper.storage._optuna_internals import ID_CHUNK, json_values  # noqa: E402  (what sweeper's read uses)

METRIC_PREFIXES = ("train_", "eval_")  # sweeper/storage/_trial_record.py
MERGED_KEY = "final_metrics"


def chunks(trial_ids: list[int]):
    """The trial ids by ID_CHUNK, each with its `?` placeholders, as sweeper's read asks for them."""
    for start in range(0, len(trial_ids), ID_CHUNK):
        chunk = trial_ids[start:start + ID_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def read_rows(connection: sqlite3.Connection, table: str, row_id: str, trial_ids: list[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for chunk, marks in chunks(trial_ids):
        rows = connection.execute(
            f"SELECT key, value_json, trial_id FROM {table} WHERE trial_id IN ({marks}) ORDER BY {row_id}", chunk
        ).fetchall()
        for (key, _, owner), value in zip(rows, json_values([row[1] for row in rows])):
            found.setdefault(owner, {})[key] = value
    return found


def read_aggregated(connection: sqlite3.Connection, trial_ids: list[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for chunk, marks in chunks(trial_ids):
        rows = connection.execute(
            "SELECT trial_id, '{' || group_concat(json_quote(key) || ':' || value_json, ',') || '}' FROM "
            f"(SELECT trial_id, key, value_json FROM trial_user_attributes WHERE trial_id IN ({marks}) "
            "ORDER BY trial_user_attribute_id) GROUP BY trial_id", chunk).fetchall()
        for (owner, _), value in zip(rows, json_values([row[1] for row in rows])):
            found[owner] = value
    return found


def build_merged(connection: sqlite3.Connection, folder: Path) -> sqlite3.Connection:
    """A copy of the user attributes with each trial's final metrics as one attribute."""
    merged = sqlite3.connect(folder / "merged.db")
    merged.execute("CREATE TABLE attributes (row_id INTEGER PRIMARY KEY, trial_id INTEGER, key VARCHAR(512), "
                   "value_json TEXT, UNIQUE (trial_id, key))")
    metrics: dict[int, dict] = {}
    kept = []
    for owner, key, text in connection.execute(
            "SELECT trial_id, key, value_json FROM trial_user_attributes ORDER BY trial_user_attribute_id"):
        if key.startswith(METRIC_PREFIXES):
            metrics.setdefault(owner, {})[key] = json.loads(text)
        else:
            kept.append((owner, key, text))
    kept += [(owner, MERGED_KEY, json.dumps(values)) for owner, values in metrics.items()]
    merged.executemany("INSERT INTO attributes (trial_id, key, value_json) VALUES (?, ?, ?)", kept)
    merged.commit()
    return merged


def flattened(found: dict[int, dict]) -> dict[int, dict]:
    return {owner: {**{k: v for k, v in attrs.items() if k != MERGED_KEY}, **attrs.get(MERGED_KEY, {})}
            for owner, attrs in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path, help="a SQLite file of real-size trials")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    connection = sqlite3.connect(args.study)
    trial_ids = [row[0] for row in connection.execute("SELECT trial_id FROM trials ORDER BY trial_id")]
    rows_count = connection.execute("SELECT count(*) FROM trial_user_attributes").fetchone()[0]
    with tempfile.TemporaryDirectory(prefix="sweeper-attributes-") as folder:
        merged = build_merged(connection, Path(folder))
        merged_count = merged.execute("SELECT count(*) FROM attributes").fetchone()[0]
        print(f"# {len(trial_ids)} trials; {rows_count} attribute rows, {merged_count} with the metrics merged")
        ways = {
            "rows": lambda: read_rows(connection, "trial_user_attributes", "trial_user_attribute_id", trial_ids),
            "aggregated": lambda: read_aggregated(connection, trial_ids),
            "merged": lambda: flattened(read_rows(merged, "attributes", "row_id", trial_ids)),
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        for round_index in range(args.rounds):
            order = list(ways) if round_index % 2 == 0 else list(ways)[::-1]
            decoded = {}
            for name in order:
                started = time.process_time()
                decoded[name] = ways[name]()
                times[name].append(time.process_time() - started)
            if not decoded["rows"] == decoded["aggregated"] == decoded["merged"]:
                sys.exit(f"round {round_index + 1}: the ways decoded different attributes")
            print(f"round {round_index + 1} ({', '.join(order)}): "
                  + ", ".join(f"{name} {times[name][-1]:.3f} s" for name in ways))
    for name in ways:
        ratios = [mine / base for mine, base in zip(times[name], times["rows"])]
        print(f"{name}: {spread(times[name])} CPU s; / rows {spread(ratios)}")


if __name__ == "__main__":
    main()
