"""Shared fixtures. Tests mirror the package; integration tests run real tiny ORPO trials on the CPU."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SWEEPER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def _postgres_answers(url: str) -> str | None:
    """None if a connection succeeds, else the reason."""
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any driver or network failure means "not here"
        return f"{type(error).__name__}: {error}".splitlines()[0]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The real PostgreSQL server. Skips with the reason where none answers; CI sets SWEEPER_REQUIRE_POSTGRES=1
    so that a missing server fails instead of skipping silently."""
    reason = _postgres_answers(POSTGRES_URL)
    if reason is not None:
        if os.environ.get("SWEEPER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (SWEEPER_REQUIRE_POSTGRES=1) but {POSTGRES_URL} failed: {reason}")
        pytest.skip(f"no PostgreSQL answers at {POSTGRES_URL} ({reason}); set SWEEPER_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def unique_name() -> str:
    """A study name no other test (or earlier run on the shared PostgreSQL) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """One built-in model/task cache for the whole session, never the user's own."""
    cache = tmp_path_factory.getbasetemp() / "sweeper-cache"
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(cache))


# A few optimizer steps of the embedded default: enough to produce every metric, train and eval, in seconds.
FAST_TRIAL = {
    "orpo.max_steps": 8,
    "orpo.logging_steps": 2,
    "orpo.eval_steps": 4,
    "data.builtin.n_train": 64,
    "data.builtin.n_eval": 32,
}


@pytest.fixture
def fast_config():
    from sweeper.config import load_training_config

    def build(**overrides):
        merged = {**FAST_TRIAL, **{key.replace("__", "."): value for key, value in overrides.items()}}
        return load_training_config(REPO_ROOT / "configs" / "tiny.yaml", merged)

    return build
