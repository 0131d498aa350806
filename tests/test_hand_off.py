"""The sweep's hand-off (sweeper/hand_off.py): where its report and export go, when they are written again, and the
helper process that draws the report for a sweep command: its lines and exit code reach the command, the command draws
the report itself where the helper is gone, and a helper never outlives its command."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import psutil
import pytest

from sweeper.hand_off import (
    HAND_OFF_STATE,
    HandOffHelper,
    claim_hand_off_folder,
    hand_off_folder,
    study_state,
    write_hand_off,
)
from sweeper.storage import Storage

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runs_study(tmp_path, monkeypatch):
    """A known study (no training) in runs/known.db under a fresh working directory: its hand-off folder is
    runs/handoff. Returns (study, storage)."""
    from _known_study import build_known_study

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    url = f"sqlite:///{tmp_path / 'runs' / 'known.db'}"
    study = build_known_study(url, "handoff")
    with Storage.for_reading(url) as storage:
        yield study, storage


def test_the_sweep_hands_off_beside_its_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hand_off_folder(f"sqlite:///{tmp_path}/runs/default.db", "orpo-tiny-default") == Path("runs/orpo-tiny-default")
    assert hand_off_folder("sqlite:////elsewhere/study.db", "s") == Path("/elsewhere/s")
    assert hand_off_folder("postgresql+psycopg2://user:secret@db.example/sweeps", "s") == Path("runs/s")


def test_the_same_study_name_in_another_storage_gets_its_own_hand_off_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = f"sqlite:///{tmp_path}/runs/a.db", f"sqlite:///{tmp_path}/runs/b.db"
    claim_hand_off_folder(tmp_path / hand_off_folder(first, "s"), first)
    assert hand_off_folder(first, "s") == Path("runs/s")  # its own folder, again
    other = hand_off_folder(second, "s")
    assert other.parent == Path("runs") and other.name.startswith("s-") and other != Path("runs/s")
    postgres = hand_off_folder("postgresql+psycopg2://user:secret@db.example/sweeps", "s")
    assert postgres.parent == Path("runs") and postgres.name.startswith("s-") and postgres != other


@pytest.mark.integration  # analyses the known study four times
def test_the_hand_off_is_written_again_only_when_the_study_changed(runs_study, tmp_path, capsys):
    """Resuming a finished study (nothing new) skips the analysis, report and export; a new trial brings them back."""
    study, storage = runs_study
    folder = tmp_path / "runs" / "handoff"
    write_hand_off("handoff", storage)
    assert (folder / HAND_OFF_STATE).is_file() and "report:" in capsys.readouterr().out
    written = (folder / "report.html").stat().st_mtime_ns

    write_hand_off("handoff", storage)
    assert "unchanged" in capsys.readouterr().out
    assert (folder / "report.html").stat().st_mtime_ns == written

    source = next(t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE)
    study.add_trial(optuna.trial.create_trial(params=source.params, distributions=source.distributions,
                                              values=[v + 0.01 for v in source.values], user_attrs=source.user_attrs))
    write_hand_off("handoff", storage)
    assert "report:" in capsys.readouterr().out
    assert (folder / "report.html").stat().st_mtime_ns != written

    (folder / "report.html").unlink()  # a hand-off that lost a file is written again
    write_hand_off("handoff", storage)
    assert (folder / "report.html").is_file()


@pytest.mark.integration  # the helper imports the analysis stack, then analyses the known study
def test_the_helper_draws_the_report_while_the_command_exports(runs_study, tmp_path, capsys):
    _, storage = runs_study
    with HandOffHelper.spawn() as helper:
        assert write_hand_off("handoff", storage, helper) == 0
    assert helper.drew_report
    folder = Path("runs") / "handoff"
    exported = len(list((tmp_path / folder / "export").glob("trial-*.yaml")))
    assert exported > 0
    assert capsys.readouterr().out == (f"report: {folder / 'report.html'}\nexport: {folder / 'export'} "
                                       f"({exported} Pareto-front configs, manifest.yaml)\n")
    assert "Plotly.newPlot" in (tmp_path / folder / "report.html").read_text()
    assert (tmp_path / folder / HAND_OFF_STATE).read_text().strip() == study_state(storage, "handoff")


@pytest.mark.integration
def test_a_helper_that_cannot_write_the_report_says_why_and_the_command_exits_with_its_code(runs_study, tmp_path, capsys):
    _, storage = runs_study
    (tmp_path / "runs" / "handoff" / "report.html").mkdir(parents=True)  # a folder where the report goes
    with HandOffHelper.spawn() as helper:
        assert write_hand_off("handoff", storage, helper) == 2
    assert not helper.drew_report
    err = capsys.readouterr().err
    assert err.startswith("error: runs/handoff/report.html: ") and err.count("error:") == 1, err
    assert not (tmp_path / "runs" / "handoff" / HAND_OFF_STATE).exists()  # the next run writes the hand-off again


@pytest.mark.integration
def test_a_helper_killed_before_the_hand_off_leaves_the_report_to_the_command(runs_study, tmp_path, capsys):
    _, storage = runs_study
    helper = HandOffHelper.spawn()
    helper._process.send_signal(signal.SIGKILL)
    helper._process.wait()
    assert write_hand_off("handoff", storage, helper) == 0
    assert not helper.drew_report
    assert "report:" in capsys.readouterr().out
    assert (tmp_path / "runs" / "handoff" / "report.html").is_file()
    assert (tmp_path / "runs" / "handoff" / HAND_OFF_STATE).is_file()


def test_a_helper_closed_without_a_study_ends_at_once_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    helper = HandOffHelper.spawn()
    process = helper._process
    helper.close()  # the command failed or was interrupted: it does not wait for the helper's imports
    assert process.returncode == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []


def test_a_helper_ends_with_its_command_however_the_command_ends():
    # a command killed outright (os._exit: no exit handler, no `close`) leaves the helper nothing to read
    command = ("import os; from sweeper.hand_off import HandOffHelper; "
               "print(HandOffHelper.spawn()._process.pid, flush=True); os._exit(9)")
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, timeout=120)
    helper = psutil.Process(int(done.stdout.strip()))
    try:
        helper.wait(timeout=120)  # it ends on its own: its input closed with the command
    except psutil.TimeoutExpired:
        helper.kill()
        raise AssertionError("the helper outlived its command")


def test_a_command_still_to_import_the_training_stack_starts_a_helper():
    # as `sweeper sweep` is when it starts the helper: it has read its study file, and torch is yet to come
    command = ("from sweeper.hand_off import HandOffHelper; helper = HandOffHelper.start(); "
               "print(helper._process is not None); helper.close()")
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_a_command_with_the_training_stack_imported_writes_its_own_hand_off():
    # torch is imported in this test process, as in any program that trained before: no helper to hide imports behind
    assert "torch" in sys.modules
    with HandOffHelper.start() as helper:
        assert helper._process is None
