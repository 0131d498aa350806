"""Export: a real tiny sweep ends by writing its report and Pareto export; an exported file re-runs the trial."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution

from sweeper.cli import main
from sweeper.export import MANIFEST_JSON, MANIFEST_YAML, export_pareto, trial_file_name
from sweeper.analysis import analyze_study
from sweeper.config import TrainingConfig
from sweeper.storage import config_hash
from sweeper.study import load_study_spec

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_sweep_writes_report_and_export_and_an_exported_trial_reproduces(
    write_fast_study, unique_name, tmp_path, monkeypatch, capsys
):
    study_file = write_fast_study(n_trials=2)
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(study_file)]) == 0
    printed = capsys.readouterr().out
    # beside the SQLite file (here tmp_path/study.db), as runs/default.db -> runs/<study_name>/ for the default
    report, export_dir = tmp_path / unique_name / "report.html", tmp_path / unique_name / "export"
    assert f"report: {os.path.relpath(report)}" in printed and f"export: {os.path.relpath(export_dir)}" in printed
    assert report.stat().st_size > 1_000_000  # plotly.js inline

    spec = load_study_spec(study_file)
    analysis = analyze_study(spec.study_name, spec.storage)
    manifest = yaml.safe_load((export_dir / MANIFEST_YAML).read_text())
    assert manifest == json.loads((export_dir / MANIFEST_JSON).read_text())
    assert manifest["study_name"] == unique_name and manifest["storage"] == analysis.storage
    assert [t["number"] for t in manifest["trials"]] == analysis.pareto_numbers
    written = sorted(p.name for p in export_dir.glob("trial-*.yaml"))
    assert written == [trial_file_name(n) for n in analysis.pareto_numbers]

    study = optuna.load_study(study_name=spec.study_name, storage=analysis.storage)
    entry = manifest["trials"][0]
    stored = study.trials[entry["number"]]
    assert entry["values"] == dict(zip(spec.objective_names, stored.values))
    assert entry["params"] == stored.params
    assert entry["config_hash"] == stored.user_attrs["config_hash"]
    assert entry["library_versions"]["trl"] == stored.user_attrs["library_versions"]["trl"]
    assert entry["dataset_fingerprint"] == stored.user_attrs["dataset_fingerprint"] != "not stored"

    exported = export_dir / entry["file"]
    sections = yaml.safe_load(exported.read_text())
    assert set(sections) == set(TrainingConfig.model_fields)  # the schema of configs/*.yaml, every section
    # the stored config, but `bf16: auto` is what the trial trained in (float32 on this CPU)
    stored_config = stored.user_attrs["training_config"]
    assert stored_config["orpo"]["bf16"] == "auto" and stored.user_attrs["bf16"] is False
    assert sections == {**stored_config, "orpo": {**stored_config["orpo"], "bf16": False}}
    assert entry["exported_config_hash"] == config_hash(sections) != entry["config_hash"]

    # TRL's own parser takes the orpo section as it is, and PEFT's LoraConfig the lora one
    from peft import LoraConfig
    from transformers import HfArgumentParser
    from trl.experimental.orpo import ORPOConfig

    (orpo_config,) = HfArgumentParser((ORPOConfig,)).parse_dict(sections["orpo"], allow_extra_keys=False)
    assert orpo_config.learning_rate == stored.params["learning_rate"]
    assert orpo_config.per_device_train_batch_size == stored.params["per_device_train_batch_size"]
    assert LoraConfig(**sections["lora"]).lora_dropout == sections["lora"]["lora_dropout"]

    assert main(["trial", str(exported), "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    values = spec.objective_values(rerun["eval_metrics"], rerun["train_metrics"], sections["orpo"]["beta"])
    assert values == pytest.approx(list(stored.values), rel=1e-4, abs=1e-4)


def test_export_refuses_a_trial_without_its_config(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'bare.db'}"
    study = optuna.create_study(study_name="bare", storage=url, directions=["minimize", "maximize"])
    study.add_trial(optuna.trial.create_trial(
        params={"beta": 0.1}, distributions={"beta": FloatDistribution(0.01, 1.0)}, values=[1.0, 2.0],
    ))
    analysis = analyze_study("bare", url)
    out = tmp_path / "export"
    from sweeper.config import ConfigError

    with pytest.raises(ConfigError, match="study 'bare', trial 0: user attribute training_config is missing"):
        export_pareto(analysis, out)
    assert not out.exists()  # nothing half-written


def test_export_of_the_known_study_lists_every_pareto_trial(known_analysis, tmp_path):
    analysis = known_analysis
    manifest = export_pareto(analysis, tmp_path / "export")
    assert [t.number for t in manifest.trials] == analysis.pareto_numbers
    for trial in manifest.trials:
        text = (tmp_path / "export" / trial.file).read_text()
        assert text.startswith(f"# Pareto-front trial {trial.number} of study known-structure")
        assert trial.config_hash == trial.exported_config_hash
        assert trial.dataset_fingerprint == "not stored"


def test_the_export_command_skips_the_effects_and_writes_what_the_full_analysis_gives(
    known_study, known_analysis, tmp_path, monkeypatch, capsys
):
    from _known_study import write_study_file

    from sweeper.analysis import _analyze

    def no_effects(*args, **kwargs):
        raise AssertionError("the export computed importances, correlations or effects it never reads")

    monkeypatch.setattr(_analyze, "importances_for", no_effects)
    monkeypatch.setattr(_analyze, "_correlations", no_effects)
    monkeypatch.setattr(_analyze, "_effect_shapes", no_effects)
    study_file = write_study_file(tmp_path / "known.yaml", *known_study)
    assert main(["export", str(study_file), "-o", str(tmp_path / "command")]) == 0
    export_pareto(known_analysis, tmp_path / "full")
    written = sorted(path.name for path in (tmp_path / "full").iterdir())
    assert sorted(path.name for path in (tmp_path / "command").iterdir()) == written and len(written) > 2
    def unstamped(text: str) -> str:  # the two exports may fall in different seconds
        return re.sub(r"(exported_at\W*)[0-9][0-9T:+\-]*", r"\1(time)", text)

    for name in written:  # the same files, but for the folder each names and the second each was written in
        command = (tmp_path / "command" / name).read_text().replace(str(tmp_path / "command"), str(tmp_path / "full"))
        assert unstamped(command) == unstamped((tmp_path / "full" / name).read_text())
    assert any("exported_at" in (tmp_path / "full" / name).read_text() for name in written)


def test_an_export_of_a_study_on_a_local_file_reruns_from_another_folder(tmp_path, write_fast_study, monkeypatch):
    # the base config names its data relative to its own folder; the export must find it from anywhere
    rows = [{"prompt": f"sort the numbers : {i + 1} {i} =", "chosen": f" {i} {i + 1}", "rejected": f" {i + 1} {i}"}
            for i in range(30)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    study_file = write_fast_study(n_trials=1)
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["data"] = {"source": "pairs.jsonl"}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(study_file), "--storage", f"sqlite:///{tmp_path / 'local.db'}"]) == 0
    (exported,) = (tmp_path / load_study_spec(study_file).study_name / "export").glob("trial-*.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert yaml.safe_load(exported.read_text())["data"]["source"] == str(tmp_path / "pairs.jsonl")
    assert main(["trial", str(exported)]) == 0
