"""What a study was built on: its space, fixed values, base config and data, remembered at creation.

A resumed study whose data, base config, space or fixed values changed would mix two experiments in one set of
trials, and the analysis would read them as one. `open_study` refuses that unless the user allows it; allowed, the
new inputs are stored as a further version and every trial records the version it ran on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import __version__ as sweeper_version
from ..config import ConfigError, build_training_config
from ..storage import config_hash, library_versions
from ..study import StudySpec

INPUTS_ATTR = "sweeper_inputs"  # study user attribute: the inputs now in force
INPUTS_HISTORY_ATTR = "sweeper_inputs_history"  # earlier versions, oldest first, when a change was allowed
ALLOW_FLAG = "--allow-changed-inputs"


@dataclass(frozen=True)
class StudyInputs:
    """The inputs of a study as the current study file and data give them."""

    space: dict[str, Any]
    fixed: dict[str, Any]
    base_config_hash: str  # the base config with the fixed values, as a validated TrainingConfig
    dataset_fingerprint: str | None  # of the rows as loaded; None when the data was not read

    def compared(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "fixed": self.fixed,
            "base_config_hash": self.base_config_hash,
            "dataset_fingerprint": self.dataset_fingerprint,
        }

    @property
    def digest(self) -> str:
        return config_hash(self.compared())

    def record(self) -> dict[str, Any]:
        """As stored with the study; library versions are kept for the record, not compared."""
        return {**self.compared(), "digest": self.digest, "versions": {"sweeper": sweeper_version, **library_versions()}}


def study_inputs(spec: StudySpec, dataset_fingerprint: str | None) -> StudyInputs:
    base = build_training_config(spec.base_mapping, dict(spec.fixed), source=str(spec.base_config))
    dumped = spec.model_dump(mode="json")
    return StudyInputs(
        space=dumped["space"],
        fixed=dumped["fixed"],
        base_config_hash=config_hash(base.model_dump(mode="json")),
        dataset_fingerprint=dataset_fingerprint,
    )


def changed_inputs(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs, in words a user can act on; [] when nothing that was recorded on both sides differs."""
    changes = []
    stored_params, current_params = stored.get("space") or {}, current.get("space") or {}
    for name in sorted(set(stored_params) | set(current_params)):
        if name not in current_params:
            changes.append(f"space: {name} was searched and is no longer")
        elif name not in stored_params:
            changes.append(f"space: {name} is new")
        elif stored_params[name] != current_params[name]:
            changes.append(f"space: {name} changed from {stored_params[name]} to {current_params[name]}")
    stored_fixed, current_fixed = stored.get("fixed") or {}, current.get("fixed") or {}
    for key in sorted(set(stored_fixed) | set(current_fixed)):
        if stored_fixed.get(key, "(unset)") != current_fixed.get(key, "(unset)"):
            changes.append(
                f"fixed: {key} changed from {stored_fixed.get(key, '(unset)')} to {current_fixed.get(key, '(unset)')}"
            )
    for key, label in (("base_config_hash", "base config"), ("dataset_fingerprint", "data")):
        before, now = stored.get(key), current.get(key)
        if before and now and before != now:
            changes.append(f"{label} changed (fingerprint {before} -> {now})")
    return changes


def refuse_changed_inputs(spec: StudySpec, where: str, changes: list[str]) -> ConfigError:
    listed = "; ".join(changes)
    return ConfigError(
        f"study_name: {spec.study_name!r} already exists in {where}, built on other inputs: {listed}. Its trials "
        "would mix two experiments. Fix: choose a new study_name, restore what changed, or resume with "
        f"{ALLOW_FLAG} (the analysis then names the trials of each version)"
    )
