"""Storage URLs: what is accepted, what is refused and how, and that passwords never show."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from sweeper.config import ConfigError
from sweeper.storage import check_storage_reachable, open_storage, redact_url, resolve_storage_url

PASSWORD = "s3cret-Pw"


def test_relative_sqlite_path_is_made_absolute_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = resolve_storage_url("sqlite:///runs/nested/sweep.db")
    assert make_url(resolved).database == str(tmp_path / "runs" / "nested" / "sweep.db")
    assert (tmp_path / "runs" / "nested").is_dir()


def test_absolute_sqlite_path_is_kept_and_its_folder_created(tmp_path):
    target = tmp_path / "a" / "b" / "sweep.db"
    assert resolve_storage_url(f"sqlite:///{target}") == f"sqlite:///{target}"
    assert target.parent.is_dir()
    assert not target.exists()  # resolving creates the folder, never the database


@pytest.mark.parametrize(
    "url",
    [f"postgresql://sweeper:{PASSWORD}@db.example:5432/sweeps", f"postgresql+psycopg2://sweeper:{PASSWORD}@db/sweeps"],
)
def test_postgresql_urls_are_pinned_to_psycopg2_and_keep_the_password(url):
    resolved = make_url(resolve_storage_url(url))
    assert resolved.drivername == "postgresql+psycopg2"
    assert resolved.password == PASSWORD
    assert resolved.database == "sweeps"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        (f"postgresql://sweeper:{PASSWORD}@db.example:5432/", "names no database"),
        (f"postgresql://sweeper:{PASSWORD}@db.example", "names no database"),
        (f"mysql://sweeper:{PASSWORD}@db.example/sweeps", "does not support"),
        (f"postgresql+psycopg://sweeper:{PASSWORD}@db.example/sweeps", "does not support"),
        ("runs/sweep.db", "cannot be parsed"),
        (f"://sweeper:{PASSWORD}@nowhere", "cannot be parsed"),
    ],
)
def test_unsupported_urls_are_refused_with_the_fix_and_without_the_password(url, says):
    with pytest.raises(ConfigError) as raised:
        resolve_storage_url(url)
    message = str(raised.value)
    assert says in message
    assert "sqlite:///" in message or "postgresql://" in message  # an example of what works
    assert PASSWORD not in message


def test_redaction_hides_the_password_and_keeps_the_rest():
    redacted = redact_url(f"postgresql://sweeper:{PASSWORD}@db.example:5432/sweeps")
    assert redacted == "postgresql://sweeper:***@db.example:5432/sweeps"
    assert redact_url("sqlite:///runs/sweep.db") == "sqlite:///runs/sweep.db"
    assert PASSWORD not in redact_url(f"not a url://sweeper:{PASSWORD}@somewhere")


def test_closed_port_is_a_quick_config_error_without_the_password():
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        check_storage_reachable(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test")
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert PASSWORD not in message
    assert "postgresql+psycopg2://postgres:***@127.0.0.1:1/test" in message
    assert "127.0.0.1:1" in message and "createdb" in message


def test_open_storage_refuses_an_unreachable_server_before_optuna_does():
    with pytest.raises(ConfigError, match="cannot open storage"):
        open_storage(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test")


@pytest.mark.postgres
def test_missing_database_is_a_config_error_naming_it(postgres_url, unique_name):
    missing = make_url(resolve_storage_url(postgres_url)).set(database=unique_name.replace("-", "_"), password=PASSWORD)
    with pytest.raises(ConfigError) as raised:
        check_storage_reachable(missing.render_as_string(hide_password=False))
    message = str(raised.value)
    assert "does not exist" in message and f"createdb {missing.database}" in message
    assert PASSWORD not in message


def test_sqlite_file_is_reachable(tmp_path):
    check_storage_reachable(f"sqlite:///{tmp_path / 'sweep.db'}")
    assert Path(tmp_path / "sweep.db").exists()


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"heartbeat_interval_s": 0}, "heartbeat_interval_s=0"),
        ({"heartbeat_interval_s": 10, "grace_period_s": 10}, "must exceed the heartbeat interval"),
        ({"heartbeat_interval_s": None, "grace_period_s": 10}, "needs heartbeats"),
        ({"max_retry": -1}, "max_retry=-1"),
    ],
)
def test_contradictory_heartbeat_settings_are_refused(tmp_path, settings, says):
    with pytest.raises(ConfigError, match=says):
        open_storage(f"sqlite:///{tmp_path / 'sweep.db'}", **settings)
