"""How many workers `sweeper sweep` starts when `--workers` is not given: one per visible GPU, else one."""

from __future__ import annotations

import pytest

import sweeper.sweep
from sweeper.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def started(monkeypatch) -> list[int]:
    """Worker counts the command started; the sweep itself runs for real (CPU workers, one fast trial)."""
    counts: list[int] = []
    launch, run_in_process = sweeper.sweep.launch_workers, sweeper.sweep.run_worker

    def counted_launch(study_file, spec, n_workers, heartbeat, *inputs):
        counts.append(n_workers)
        return launch(study_file, spec, n_workers, heartbeat, *inputs)

    def counted_run(spec, heartbeat, **inputs):
        counts.append(1)
        return run_in_process(spec, heartbeat=heartbeat, **inputs)

    monkeypatch.setattr(sweeper.sweep, "launch_workers", counted_launch)
    monkeypatch.setattr(sweeper.sweep, "run_worker", counted_run)
    return counts


@pytest.mark.parametrize(("gpus", "expected"), [([], 1), (["0"], 1), (["0", "1", "2"], 3)])
def test_default_is_one_worker_per_visible_gpu(write_fast_study, started, monkeypatch, gpus, expected):
    monkeypatch.setattr(sweeper.sweep, "visible_gpus", lambda: gpus)
    assert main(["sweep", str(write_fast_study(n_trials=1))]) == 0
    assert started == [expected]


def test_workers_given_on_the_command_line_win(write_fast_study, started, monkeypatch):
    monkeypatch.setattr(sweeper.sweep, "visible_gpus", lambda: ["0", "1", "2"])
    assert main(["sweep", str(write_fast_study(n_trials=1)), "--workers", "2"]) == 0
    assert started == [2]
