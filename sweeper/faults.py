"""Fault injection for tests and drills, off unless an environment variable asks for it.

Workers are separate processes, so faults are switched on through the environment they inherit:
- SWEEPER_FAULT_OOM_ABOVE_MICRO_BATCH=K: a training step whose micro-batch holds more than K pairs raises
  torch.OutOfMemoryError at the point where the batch would be allocated.
- SWEEPER_FAULT_OOM_WITHOUT_CHECKPOINTING=1: every training step raises torch.OutOfMemoryError unless the model
  has gradient checkpointing on, at any micro-batch (memory that only recomputing activations can fit).
- SWEEPER_FAULT_OOM_ABOVE_PACKED_ROWS=R: a packed trials' shared training forward of more than R rows (two per
  pair) raises torch.OutOfMemoryError.
- SWEEPER_FAULT_OOM_ABOVE_PACKED_BACKWARD=T: a packed trials' shared backward of more than T trials raises
  torch.OutOfMemoryError.
- SWEEPER_FAULT_RAISE_IF="orpo.weight_decay=0.0777": a trial whose config has that value raises RuntimeError.
"""

from __future__ import annotations

import os
from typing import Any

from .config import load_yaml_text

OOM_ABOVE_MICRO_BATCH = "SWEEPER_FAULT_OOM_ABOVE_MICRO_BATCH"
OOM_WITHOUT_CHECKPOINTING = "SWEEPER_FAULT_OOM_WITHOUT_CHECKPOINTING"
OOM_ABOVE_PACKED_ROWS = "SWEEPER_FAULT_OOM_ABOVE_PACKED_ROWS"
OOM_ABOVE_PACKED_BACKWARD = "SWEEPER_FAULT_OOM_ABOVE_PACKED_BACKWARD"
RAISE_IF = "SWEEPER_FAULT_RAISE_IF"


class InjectedFault(RuntimeError):
    pass


def oom_micro_batch_limit() -> int | None:
    value = os.environ.get(OOM_ABOVE_MICRO_BATCH)
    return int(value) if value else None


def oom_packed_rows_limit() -> int | None:
    value = os.environ.get(OOM_ABOVE_PACKED_ROWS)
    return int(value) if value else None


def oom_packed_backward_limit() -> int | None:
    value = os.environ.get(OOM_ABOVE_PACKED_BACKWARD)
    return int(value) if value else None


def oom_without_gradient_checkpointing() -> bool:
    return os.environ.get(OOM_WITHOUT_CHECKPOINTING) == "1"


def raise_if_requested(config_values: dict[str, Any]) -> None:
    """`config_values` is the config as a nested dict; raises InjectedFault when RAISE_IF matches it."""
    condition = os.environ.get(RAISE_IF)
    if not condition:
        return
    path, _, wanted = condition.partition("=")
    node: Any = config_values
    for part in path.strip().split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is not None and node == load_yaml_text(wanted):
        raise InjectedFault(f"injected fault: {path.strip()} = {node}")
