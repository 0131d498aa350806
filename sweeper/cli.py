"""The `sweeper` command line. Each subcommand is a thin shell over one stage of the package."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .config import ConfigError


def _quiet_libraries() -> None:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()


def _print_trial(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from .metrics import ORPO_METRICS

    table = Table(title="ORPO trial: final metrics")
    table.add_column("metric")
    table.add_column("train", justify="right")
    table.add_column("eval", justify="right")
    for name in ORPO_METRICS:
        train, evaluation = result.train_metrics.get(name), result.eval_metrics.get(f"eval_{name}")
        table.add_row(name, *(f"{v:.4f}" if v is not None else "-" for v in (train, evaluation)))
    for name in ("runtime", "samples_per_second", "steps_per_second"):
        train, evaluation = result.train_metrics.get(f"train_{name}"), result.eval_metrics.get(f"eval_{name}")
        table.add_row(name, *(f"{v:.3f}" if v is not None else "-" for v in (train, evaluation)))
    console = Console()
    console.print(table)
    console.print(
        f"steps {result.global_steps}, effective batch {result.effective_batch_size}, "
        f"{result.train_rows} train / {result.eval_rows} eval pairs, "
        f"{result.dropped_long_prompts} dropped for prompts filling max_length, wall {result.runtime_s:.1f} s"
    )
    for note in result.notes:
        console.print(f"note: {note}")


def cmd_trial(args: argparse.Namespace) -> int:
    from .config import load_training_config

    config = load_training_config(args.config, args.set)
    _quiet_libraries()
    from .trial import TrialFailure, run_trial

    with tempfile.TemporaryDirectory(prefix="sweeper-trial-") as scratch:
        try:
            result = run_trial(config, args.output_dir or scratch)
        except TrialFailure as failure:
            if args.json:
                print(json.dumps({"state": "FAIL", "failure_reason": failure.reason, "detail": failure.detail}))
            print(f"trial failed: {failure}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"state": "COMPLETE", **result.to_dict()}))
    else:
        _print_trial(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweeper", description="Hyperparameter sweeps for ORPO + LoRA.")
    commands = parser.add_subparsers(dest="command", required=True)

    trial = commands.add_parser("trial", help="train one ORPO + LoRA run from a config file and report its metrics")
    trial.add_argument("config", help="a training config, e.g. configs/tiny.yaml")
    trial.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value by dotted key, e.g. --set orpo.learning_rate=1e-4 (repeatable)",
    )
    trial.add_argument("--json", action="store_true", help="print one JSON object: final metrics and curves")
    trial.add_argument("--output-dir", help="trainer output folder (default: a temporary folder)")
    trial.set_defaults(handler=cmd_trial)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
