"""A password in a storage URL is never printed, logged or stored; study and config files are read with safe YAML.
(A password in failure messages: corpus cases with `s3cret`; in retry log lines: tests/storage/test_storage_retry.py;
in worker command lines and under faults: test_faults.py.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sweeper.storage import redact_url, resolve_storage_url

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-security"


def _with_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweeper.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.integration
def test_storage_password_is_never_printed_stored_or_written(tmp_path, postgres_url, unique_name, fast_config):
    import yaml

    url = _with_password(postgres_url)
    base = fast_config(orpo__max_steps=2, orpo__eval_steps=2, orpo__logging_steps=1)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base.model_dump(mode="json")))
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "study_name": unique_name,
                "base_config": "base.yaml",
                "space": {"orpo.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]}},
                "objectives": [{"name": "eval_nll_loss"}, {"name": "eval_logp_margin"}],
                "n_trials": 1,
                "storage": url,  # in the file, as a person would write it
            }
        )
    )
    runs = [_run(["sweep", "study.yaml"], tmp_path), _run(["status", "study.yaml"], tmp_path)]
    runs.append(_run(["status", "study.yaml", "--json"], tmp_path))
    for done in runs:
        assert done.returncode == 0, done.stderr
        assert PASSWORD not in done.stdout + done.stderr
    assert redact_url(url) in runs[0].stdout  # the summary names the storage, password hidden

    # nothing the sweep stored (study and trial attributes, the study file's copy) holds it either
    study = optuna.load_study(study_name=unique_name, storage=resolve_storage_url(postgres_url))
    stored = json.dumps(
        [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
        + [[t.user_attrs, t.system_attrs, t.params] for t in study.get_trials()],
        default=str,
    )
    assert PASSWORD not in stored
    assert study.user_attrs["sweeper_spec"]["storage"] == redact_url(resolve_storage_url(url))
    # nor any file it wrote (the report and the Pareto export land under the working directory)
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.name != "study.yaml"]
    assert any(path.suffix == ".html" for path in written), "the sweep wrote no report to check"
    leaking = [str(path) for path in written if PASSWORD.encode() in path.read_bytes()]
    assert leaking == []
    optuna.delete_study(study_name=unique_name, storage=resolve_storage_url(postgres_url))


def _yaml_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "yaml":
                yield node


def test_every_yaml_read_in_the_package_is_safe():
    """yaml.load only with sweeper's SafeLoader subclass; never unsafe_load, full_load or an unsafe Loader."""
    unsafe = []
    for path in sorted((REPO_ROOT / "sweeper").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _yaml_calls(tree):
            name = call.func.attr
            where = f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
            if name in ("unsafe_load", "unsafe_load_all", "full_load", "full_load_all", "load_all"):
                unsafe.append(f"{where}: yaml.{name}")
            elif name == "load":
                loader = next((k.value for k in call.keywords if k.arg == "Loader"), None)
                if not (isinstance(loader, ast.Name) and loader.id == "SafeLoader"):
                    unsafe.append(f"{where}: yaml.load without Loader=SafeLoader")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("UnsafeLoader", "FullLoader", "Loader", "Constructor"):
                if isinstance(node.value, ast.Name) and node.value.id == "yaml":
                    unsafe.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: yaml.{node.attr}")
    assert unsafe == []


def test_the_package_safe_loader_builds_no_python_objects(tmp_path, monkeypatch):
    from sweeper.config import ConfigError, load_yaml_text, read_yaml_mapping
    from sweeper.config._yaml import SafeLoader

    import yaml

    assert issubclass(SafeLoader, yaml.SafeLoader)
    monkeypatch.chdir(tmp_path)
    for payload in (
        "!!python/object/apply:os.system ['touch ran']",
        "!!python/object/new:subprocess.Popen [['touch', 'ran']]",
        "!!python/name:os.system",
        "!!python/module:os",
    ):
        with pytest.raises(yaml.constructor.ConstructorError):
            load_yaml_text(payload)
        (tmp_path / "file.yaml").write_text(f"seed: {payload}\n")
        with pytest.raises(ConfigError, match="refused"):
            read_yaml_mapping(tmp_path / "file.yaml")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("command", ["sweep", "worker", "status", "analyze", "dashboard"])
@pytest.mark.parametrize(
    "url",
    ["postgresql//sweeper:s3cret-env@127.0.0.1/test", "postgresql:/sweeper:s3cret-env@127.0.0.1/test",
     "postgresql://sweeper:s3cret-env@x@127.0.0.1/test"],
)
def test_a_mistyped_url_from_the_environment_never_shows_its_password(command, url, monkeypatch, capsys):
    from sweeper.cli import main

    monkeypatch.setenv("SWEEPER_SECURITY_URL", url)
    code = main([command, str(REPO_ROOT / "studies" / "default.yaml"), "--storage-env", "SWEEPER_SECURITY_URL"])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: ")
    assert "s3cret-env" not in out + err and "***" in err


def test_a_storage_file_others_can_read_is_refused_with_the_fix(tmp_path, capsys):
    from sweeper.cli import main

    url_file = tmp_path / "storage-url"
    url_file.write_text("postgresql://sweeper:s3cret-file@127.0.0.1/test\n")
    url_file.chmod(0o644)
    code = main(["status", str(REPO_ROOT / "studies" / "default.yaml"), "--storage-file", str(url_file)])
    err = capsys.readouterr().err
    assert code == 2 and f"chmod 600 {url_file}" in err and "644" in err
    assert "s3cret-file" not in err


def test_a_storage_file_readable_by_its_owner_only_gives_the_url(tmp_path, capsys):
    from sweeper.cli import main

    url_file = tmp_path / "storage-url"
    url_file.write_text(f"\n  sqlite:///{tmp_path / 'elsewhere.db'}  \n")
    url_file.chmod(0o600)
    code = main(["status", str(REPO_ROOT / "studies" / "default.yaml"), "--storage-file", str(url_file)])
    err = capsys.readouterr().err
    assert code == 2 and "elsewhere.db" in err  # read from the file: no such study there yet


def test_the_storage_url_is_given_one_way_only(tmp_path, capsys, monkeypatch):
    from sweeper.cli import main

    monkeypatch.setenv("SWEEPER_SECURITY_URL", "sqlite:///a.db")
    code = main(["status", str(REPO_ROOT / "studies" / "default.yaml"), "--storage", "sqlite:///b.db",
                 "--storage-env", "SWEEPER_SECURITY_URL"])
    assert code == 2 and "--storage and --storage-env: give the storage URL one way only" in capsys.readouterr().err
