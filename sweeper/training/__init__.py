"""Training: one ORPO + LoRA run through TRL (the only stage that imports TRL and PEFT, in `_orpo.py`)."""

from ._orpo import NonFiniteLossError, describe_device, is_out_of_memory, release_memory, run_orpo

__all__ = ["NonFiniteLossError", "describe_device", "is_out_of_memory", "release_memory", "run_orpo"]
