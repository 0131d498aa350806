"""`sweeper export`: one training config per Pareto-front trial, in the schema of `configs/*.yaml`, and a manifest.

Reads only the analysis. Each file is the trial's stored `training_config`, `bf16: auto` replaced by the precision
the trial trained in, validated again by the config schema and parsed by TRL's and PEFT's own classes, so
`sweeper trial DIR/trial-0007.yaml` re-runs the trial and TRL's `HfArgumentParser((ORPOConfig,))` takes its `orpo:`
section as it is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ..analysis import StudyAnalysis, TrialRow
from ..config import ConfigError, TrainingConfig, build_training_config, config_to_yaml
from ..storage import config_hash

MANIFEST_YAML, MANIFEST_JSON = "manifest.yaml", "manifest.json"
NOT_STORED = "not stored"


@dataclass
class ExportedTrial:
    number: int
    file: str  # relative to the export folder
    values: dict[str, float]
    params: dict[str, Any]
    seed: int | None
    fit_label: str | None
    config_hash: str  # as stored with the trial
    exported_config_hash: str
    library_versions: dict[str, str] | str
    dataset_fingerprint: str


@dataclass
class ExportManifest:
    study_name: str
    storage: str  # password redacted by the analysis
    objectives: list[dict[str, str]]
    exported_at: str
    sweeper_version: str
    trials: list[ExportedTrial] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trial_file_name(number: int) -> str:
    return f"trial-{number:04d}.yaml"


def _checked_config(analysis: StudyAnalysis, trial: TrialRow) -> TrainingConfig:
    where = f"study {analysis.study_name!r}, trial {trial.number}: user attribute training_config"
    if not isinstance(trial.training_config, dict):
        raise ConfigError(
            f"{where} is missing, so the trial cannot be exported; it was stored by a sweeper that did not record it. "
            "Re-run the trial with `sweeper sweep`"
        )
    config = _as_it_ran(build_training_config(trial.training_config, source=where), trial)
    # Lazy: the training stage pulls in torch and TRL, which only this check needs.
    from ..training import parse_with_trl_and_peft

    try:
        parse_with_trl_and_peft(config)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: TRL's ORPOConfig or PEFT's LoraConfig refuses it: {error}") from None
    return config


def _as_it_ran(config: TrainingConfig, trial: TrialRow) -> TrainingConfig:
    """`orpo.bf16: auto` replaced by the precision the trial trained in, where stored: TRL's ORPOConfig takes only
    a boolean (its own default, bf16 on, fails on a CPU), and the re-run should train as the trial did."""
    if config.orpo.bf16 != "auto" or trial.bf16 is None:
        return config
    return config.model_copy(update={"orpo": config.orpo.model_copy(update={"bf16": trial.bf16})})


def _precision_note(config: TrainingConfig, trial: TrialRow) -> str:
    if config.orpo.bf16 == "auto":  # stored by a sweeper that did not record the precision
        return ("# orpo.bf16: auto (the trial's precision was not stored): sweeper resolves it per device; for TRL's "
                "own ORPOConfig set true or false.\n")
    if trial.bf16:
        return ("# orpo.bf16: true, as the trial trained; TRL and sweeper accept it only on a device with bf16 (on a "
                "CPU set false, or pass use_cpu to TRL).\n")
    return ""


def _header(analysis: StudyAnalysis, trial: TrialRow, path: Path, config: TrainingConfig) -> str:
    values = ", ".join(
        f"{o.name} = {trial.values[o.name]:.6g} ({o.direction})" for o in analysis.objectives
    )
    fit = f"; fit: {trial.fit.label} (gap {trial.fit.generalization_gap:.4g})" if trial.fit and trial.fit.label else ""
    return (
        f"# Pareto-front trial {trial.number} of study {analysis.study_name} ({analysis.storage}).\n"
        f"# {values}{fit}\n"
        f"# Re-run it: sweeper trial {path}\n"
        + _precision_note(config, trial)
    )


def export_pareto(analysis: StudyAnalysis, out_dir: str | Path) -> ExportManifest:
    """Write DIR/trial-NNNN.yaml per Pareto trial plus DIR/manifest.yaml and DIR/manifest.json."""
    if not analysis.pareto_numbers:
        raise ConfigError(f"study {analysis.study_name!r} has no completed trials yet, so no Pareto front to export")
    out_dir = Path(out_dir)
    configs = [(trial, _checked_config(analysis, trial)) for trial in analysis.pareto_trials]  # all before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = ExportManifest(
        study_name=analysis.study_name,
        storage=analysis.storage,
        objectives=[{"name": o.name, "direction": o.direction} for o in analysis.objectives],
        exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sweeper_version=metadata.version("sweeper"),
    )
    for trial, config in configs:
        path = out_dir / trial_file_name(trial.number)
        path.write_text(_header(analysis, trial, path, config) + config_to_yaml(config), encoding="utf-8")
        manifest.trials.append(
            ExportedTrial(
                number=trial.number,
                file=path.name,
                values=dict(trial.values or {}),
                params=dict(trial.params),
                seed=config.seed,
                fit_label=trial.fit.label if trial.fit else None,
                config_hash=trial.config_hash or NOT_STORED,
                # what was written: differs from the stored hash where `bf16: auto` became the trial's precision,
                # or where the config schema gained defaults since
                exported_config_hash=config_hash(config.model_dump(mode="json")),
                library_versions=trial.library_versions or NOT_STORED,
                dataset_fingerprint=trial.dataset_fingerprint or NOT_STORED,
            )
        )
    data = manifest.to_dict()
    (out_dir / MANIFEST_YAML).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (out_dir / MANIFEST_JSON).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return manifest
