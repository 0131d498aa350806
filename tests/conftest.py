"""Shared fixtures. Tests mirror the package; integration tests run real tiny ORPO trials on the CPU."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

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
def _training_carries_the_integration_mark(request, monkeypatch):
    """The fast tier (`-m "not integration and not slow"`) trains nothing: a test that starts training in this
    process without the integration mark fails, saying so. Loading and checking data before training is allowed.
    (Subprocesses are not watched: tests that train in one are marked by hand.)"""
    if request.node.get_closest_marker("integration") or request.node.get_closest_marker("slow"):
        return
    from sweeper.training import _trl

    def refuse(*args, **kwargs):
        raise AssertionError(f"{request.node.nodeid} trains a model: mark it pytest.mark.integration")

    monkeypatch.setattr(_trl._CheckedORPOTrainer, "train", refuse)


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


@pytest.fixture(scope="session")
def known_study(tmp_path_factory):
    """A stored two-objective study of known structure, built without training (see tests/_known_study.py).
    Returns (study_name, storage_url). Shared by the session: tests only read it."""
    from _known_study import build_known_study  # tests/ is on sys.path: it holds this conftest

    url = f"sqlite:///{tmp_path_factory.mktemp('known') / 'known.db'}"
    build_known_study(url, "known-structure")
    return "known-structure", url


@pytest.fixture(scope="session")
def known_analysis(known_study):
    """The analysis of the known study, computed once for the session (about 7 s each time): tests only read it."""
    from sweeper.analysis import analyze_study

    return analyze_study(*known_study)


# Three of the six hyperparameters, so that enqueued trials can name every parameter.
FAST_SPACE = {
    "orpo.learning_rate": {"log_uniform": [1.0e-4, 1.0e-2]},
    "orpo.per_device_train_batch_size": {"choice": [2, 4, 8]},
    "orpo.weight_decay": {"uniform": [0.0, 0.1]},
}


@pytest.fixture
def write_fast_study(tmp_path: Path, unique_name: str, fast_config):
    """`write_fast_study(n_trials=3, storage=None, training={...dotted...}, **study_fields) -> Path` of a study file
    whose trials take a few seconds each. Storage defaults to a SQLite file in tmp_path."""

    def write(n_trials: int = 3, storage: str | None = None, training: dict | None = None, **study_fields) -> Path:
        base = fast_config(**{key.replace(".", "__"): value for key, value in (training or {}).items()})
        (tmp_path / "base.yaml").write_text(yaml.safe_dump(base.model_dump(mode="json"), sort_keys=False))
        study = {
            "study_name": unique_name,
            "base_config": "base.yaml",
            "space": FAST_SPACE,
            "objectives": [
                {"name": "eval_nll_loss", "direction": "minimize"},
                {"name": "eval_logp_margin", "direction": "maximize"},
            ],
            "sampler": {"name": "tpe", "seed": 0},
            "n_trials": n_trials,
            "storage": storage or f"sqlite:///{tmp_path / 'study.db'}",
            **study_fields,
        }
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        return path

    return write
