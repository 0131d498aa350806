"""`Storage`: the handle a command opens once and passes down (one engine for Optuna, the curves and the slot lock)."""

from __future__ import annotations

import optuna
import pytest

from sweeper.config import ConfigError
from sweeper.metrics import CurvePoint
from sweeper.storage import Storage, TrialSlotLock

PASSWORD = "s3cret-Pw"


def test_optuna_the_curves_and_the_slot_lock_share_the_storages_one_engine(storage_url, unique_name):
    with Storage.open(storage_url, heartbeat_interval_s=None) as storage:
        study = optuna.create_study(study_name=unique_name, storage=storage.optuna, directions=["minimize"])
        study.tell(study.ask(), 1.0)
        storage.curves.write(unique_name, 0, [CurvePoint(4, "eval", "loss", 1.5)])
        assert storage.curves._engine is storage.engine is storage.optuna.engine
        assert [point["value"] for point in storage.curves.read(unique_name)] == [1.5]
        slot = TrialSlotLock(storage.url, unique_name, engine=storage.engine)
        slot.acquire()
        slot.close()
        assert not slot._owns_engine  # closing the lock leaves the storage's engine to the storage
    with Storage.for_reading(storage_url) as reading:  # what was written is there for the next command
        assert unique_name in reading.study_names()
        assert len(optuna.load_study(study_name=unique_name, storage=reading.optuna).trials) == 1


def test_reading_a_missing_sqlite_file_is_refused_and_creates_none(tmp_path):
    missing = tmp_path / "missing.db"
    with pytest.raises(ConfigError, match="no such file"):
        Storage.for_reading(f"sqlite:///{missing}")
    with pytest.raises(ConfigError, match="no such file"):
        Storage.open(f"sqlite:///{missing}", existing=True)
    assert not missing.exists()


def test_an_unreachable_server_is_a_config_error_without_the_password():
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test"
    for opening in (Storage.for_reading, Storage.open):
        with pytest.raises(ConfigError, match="cannot open storage") as raised:
            opening(url)
        assert PASSWORD not in str(raised.value) and "createdb" in str(raised.value)


@pytest.mark.postgres
def test_the_redacted_url_hides_the_password(postgres_url):
    from sqlalchemy.engine import make_url

    # the test server trusts local logins, so a password in the URL is accepted and ignored
    with_password = make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    with Storage.open(with_password, heartbeat_interval_s=None) as storage:
        assert PASSWORD in storage.url  # what the workers open
        assert PASSWORD not in storage.redacted and ":***@" in storage.redacted
