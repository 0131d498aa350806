"""Every bad input in `corpus/` is refused through the real command line: exit code 2, one `error:` naming the
file, field or row and the fix, no traceback, and no study or file created or changed (see corpus/expected.yaml)."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from sweeper.cli import main

CORPUS = Path(__file__).parent / "corpus"
CASES: dict[str, dict] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
BYSTANDER = "corpus-bystander"
YAML_TAG_MARKER = "yaml-tag-executed"  # what the corpus's Python-object tags would create if they ever ran


def _files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


class Sandbox:
    """A SQLite storage holding one finished study (plus the case's `existing` one): whatever a refused command
    does, it must leave both exactly as they were and add no study. Built once per kind and copied per case: a
    new Optuna schema costs about half a second, and there are a hundred such cases."""

    _templates: dict[str, Path] = {}

    def __init__(self, path: Path, existing: dict | None):
        self.path, self.url = path, f"sqlite:///{path}"
        key = yaml.safe_dump(existing, sort_keys=True)
        if key not in self._templates:
            template = path.with_name(f"template-{len(self._templates)}.db")
            self._build(f"sqlite:///{template}", existing)
            self._templates[key] = template
        shutil.copyfile(self._templates[key], path)

    @staticmethod
    def _build(url: str, existing: dict | None) -> None:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        studies = [(BYSTANDER, ["minimize", "maximize"])]
        if existing:
            studies.append((existing["study_name"], existing["directions"]))
        for name, directions in studies:
            study = optuna.create_study(study_name=name, storage=url, directions=directions)
            trial = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
            trial.set_user_attr("eval_nll_loss", 1.25)
            study.tell(trial, [1.25, 0.5][: len(directions)])

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table, and the tables there are: a refused command adds, changes or removes none."""
        with contextlib.closing(sqlite3.connect(self.path)) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {table: connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
                    for table in sorted(tables)}


@pytest.fixture
def corpus_copy(tmp_path: Path, monkeypatch) -> Path:
    """The corpus copied into its own folder, which becomes the working directory (data paths are relative)."""
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    monkeypatch.chdir(copy)
    monkeypatch.delenv("SWEEPER_CORPUS_UNSET_VARIABLE", raising=False)
    return copy


def _names_own_storage(argv: list[str], study_file: Path) -> bool:
    if "--storage" in argv or "--storage-env" in argv:
        return True
    try:
        return "storage" in yaml.safe_load(study_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, AttributeError, TypeError):
        return False


def test_corpus_is_large_and_every_file_has_a_case():
    assert len(CASES) >= 30
    used = {arg for case in CASES.values() for arg in case["argv"]}
    for path in (CORPUS / "configs").glob("*.yaml"):
        # base configs of study cases are exercised through their study file
        named = f"configs/{path.name}" in used or any(
            f"../configs/{path.name}" in study.read_text() for study in (CORPUS / "studies").glob("*.yaml")
        )
        assert named, f"{path.name} has no case in expected.yaml"
    for path in (CORPUS / "studies").glob("*.yaml"):
        assert f"studies/{path.name}" in used, f"{path.name} has no case in expected.yaml"


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bad_input_is_refused_with_one_clear_error(case_id: str, corpus_copy: Path, capsys, request):
    case = CASES[case_id]
    if case.get("needs") == "postgres":
        request.getfixturevalue("postgres_url")
    argv = [str(arg) for arg in case["argv"]]
    sandbox = None
    if argv[0] in ("sweep", "worker", "status") and not _names_own_storage(argv, corpus_copy / argv[1]):
        sandbox = Sandbox(corpus_copy.parent / "sandbox.db", case.get("existing"))
        argv += ["--storage", sandbox.url]
    stored_before = sandbox.snapshot() if sandbox else None
    files_before = _files(corpus_copy)

    code = main(argv)

    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr:\n{err}"
    assert "Traceback" not in out + err
    assert out == "", f"a refused command printed to stdout:\n{out}"
    assert err.startswith("error: ") and err.count("error:") == 1, f"not one error message:\n{err}"
    for expected in case["names"]:
        assert expected in err, f"the message does not name {expected!r}:\n{err}"
    assert case["hint"] in err, f"the message does not give the fix {case['hint']!r}:\n{err}"
    assert "s3cret" not in err, "a password from a storage URL was printed"
    assert not (corpus_copy / YAML_TAG_MARKER).exists(), "a YAML tag ran code"
    assert _files(corpus_copy) == files_before, "a refused command created or changed a file"
    if sandbox:
        assert sandbox.snapshot() == stored_before, "a refused command created a study or changed a stored one"


@pytest.mark.integration
@pytest.mark.parametrize(
    "case_id", ["config-python-object-tag", "study-data-missing-column", "storage-unreachable-database"]
)
def test_installed_command_exits_2_without_traceback(case_id: str, corpus_copy: Path):
    """The same through the installed `sweeper` script, as a person runs it."""
    case = CASES[case_id]
    sweeper = Path(sys.executable).with_name("sweeper")
    argv = [str(arg) for arg in case["argv"]]
    if argv[0] == "sweep" and not _names_own_storage(argv, corpus_copy / argv[1]):
        argv += ["--storage", f"sqlite:///{corpus_copy.parent / 'sandbox.db'}"]
    done = subprocess.run([str(sweeper), *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("error:") == 1, done.stderr
    assert all(expected in done.stderr for expected in case["names"]), done.stderr
    assert not (corpus_copy / YAML_TAG_MARKER).exists()
