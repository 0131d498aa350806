"""Every storage test runs on a real SQLite file and on the real PostgreSQL server (skipped where none answers)."""

from __future__ import annotations

import warnings

import optuna
import pytest

from sweeper.storage import CurveStore, resolve_storage_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage_url(request, tmp_path, unique_name):
    """A database URL; on the shared PostgreSQL the test's study and curves are removed afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sweep.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            optuna.delete_study(study_name=unique_name, storage=resolve_storage_url(url))
        except KeyError:  # the test created no study
            pass
    with CurveStore(url) as curves:
        curves.delete_study(unique_name)
