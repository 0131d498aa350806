"""Each command opens its storage once: one SQLAlchemy engine for Optuna's tables, the curves, the trial slot lock,
the closing summary, report and export (a `sweeper sweep` made 7, `sweeper analyze` 3)."""

from __future__ import annotations

import pytest
import sqlalchemy
import sqlalchemy.engine

from sweeper.cli import main

pytestmark = pytest.mark.integration  # the sweep trains


@pytest.fixture
def engines_made(monkeypatch):
    """The URL of every engine created from here on (Optuna and sweeper both call `create_engine` by its module)."""
    made: list[str] = []
    real = sqlalchemy.engine.create_engine

    def counting(url, *args, **kwargs):
        made.append(str(url))
        return real(url, *args, **kwargs)

    monkeypatch.setattr(sqlalchemy, "create_engine", counting)
    monkeypatch.setattr(sqlalchemy.engine, "create_engine", counting)
    return made


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_command_opens_one_engine(backend, request, write_fast_study, unique_name, engines_made, tmp_path,
                                        monkeypatch):
    import optuna

    from sweeper.storage import CurveStore, resolve_storage_url

    storage = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    study_file = write_fast_study(n_trials=2, storage=storage)
    monkeypatch.chdir(tmp_path)  # the hand-off of a server storage goes under runs/ here
    try:
        commands = [
            ["sweep", str(study_file)],  # preflight, the worker (its slot lock, its curves), summary, report, export
            ["status", str(study_file)],
            ["analyze", str(study_file), "--json"],
            ["report", str(study_file), "--output", str(tmp_path / "report.html")],
            ["export", str(study_file), "--output", str(tmp_path / "export")],
        ]
        for command in commands:
            engines_made.clear()
            assert main(command) == 0, command
            assert len(engines_made) == 1, (command, engines_made)
    finally:
        if storage is not None:
            optuna.delete_study(study_name=unique_name, storage=resolve_storage_url(storage))
            with CurveStore(storage) as curves:
                curves.delete_study(unique_name)
