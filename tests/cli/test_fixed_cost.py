"""What a sweep command does once rather than twice, and what it leaves out at import and exit (bench/sweep_overhead.py
and bench/import_collector.py measure the seconds): the data the preflight checked is the data its worker's trials
train on, the training stack is imported with the garbage collector paused, and the `sweeper` command leaves without
the interpreter's teardown of the training stack's objects."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest
import yaml

from sweeper._command import collector_paused
from sweeper.cli import main
from sweeper.study import load_study_spec
from sweeper.sweep import HeartbeatSettings, open_checked
from sweeper.training import TrialReuse, pairs_key


def test_the_checked_pairs_are_the_ones_a_trial_looks_up(write_fast_study):
    spec = load_study_spec(write_fast_study(n_trials=1))
    reuse = TrialReuse()
    storage, _ = open_checked(spec, HeartbeatSettings(), reuse)
    storage.close()

    def prepared_again():
        raise AssertionError("the trial prepared the pairs the preflight had checked")

    trial_config = spec.training_config({"learning_rate": 1e-4, "per_device_train_batch_size": 8, "weight_decay": 0.05})  # a trial's: its searched values differ
    assert reuse.pairs(pairs_key(trial_config), prepared_again) is not None
    assert (reuse.counts.pairs_built, reuse.counts.pairs_reused) == (1, 1)


def test_a_trial_whose_data_differs_prepares_its_own(write_fast_study):
    spec = load_study_spec(write_fast_study(n_trials=1))
    reuse = TrialReuse()
    open_checked(spec, HeartbeatSettings(), reuse)[0].close()
    longer = spec.training_config({}).model_copy(deep=True)
    longer.orpo.max_length += 8  # another max_length drops other rows
    assert pairs_key(longer) != pairs_key(spec.training_config({}))
    assert reuse.pairs(pairs_key(longer), lambda: "built") == "built"


@pytest.mark.integration  # the sweep and the worker train
def test_sweep_and_worker_load_the_data_once(write_fast_study, monkeypatch):
    from sweeper.training import _pairs

    loads: list[str] = []
    real = _pairs.load_preference_data

    def counted(config):
        loads.append(config.source)
        return real(config)

    monkeypatch.setattr(_pairs, "load_preference_data", counted)
    study_file = write_fast_study(n_trials=1)
    assert main(["sweep", str(study_file)]) == 0
    assert len(loads) == 1, loads  # the preflight's; the trial took its pairs

    loads.clear()
    study = yaml.safe_load(study_file.read_text())
    study_file.write_text(yaml.safe_dump({**study, "n_trials": 2}))
    assert main(["worker", str(study_file), "--no-progress"]) == 0
    assert len(loads) == 1, loads


def test_the_command_exits_without_the_interpreter_teardown(tmp_path):
    """`run` returns main's code, every exit handler the command registered runs and stdout is flushed; then the
    process ends: what would come after sweeper's handler (the interpreter's teardown, and here a handler registered
    before the command started, which Python runs after it) never runs."""
    script = textwrap.dedent(
        f"""
        import atexit
        import sweeper.cli as cli

        atexit.register(lambda: print(" torn down", end=""))  # before run(): runs after sweeper's handler, if at all
        real_main = cli.main

        def main():
            atexit.register(lambda: print("exit handler ran", end=""))  # buffered: only a flush shows it
            return real_main(["status", {str(tmp_path / "missing.yaml")!r}])

        cli.main = main
        cli.run()
        """
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stderr  # main's: a study file that does not exist
    assert "missing.yaml" in finished.stderr
    assert finished.stdout == "exit handler ran"


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_paused_for_the_block_then_resumes_as_it_was(enabled_before):
    was_enabled = gc.isenabled()
    (gc.enable if enabled_before else gc.disable)()
    try:
        frozen_before = gc.get_freeze_count()
        with pytest.raises(ValueError), collector_paused():
            assert not gc.isenabled()
            kept = [[index] for index in range(1000)]  # what an import leaves alive: frozen at the end
            raise ValueError("the block failed")  # still resumes
        assert gc.isenabled() == enabled_before
        assert gc.get_freeze_count() >= frozen_before + len(kept)
    finally:
        gc.unfreeze()
        (gc.enable if was_enabled else gc.disable)()


def test_without_freeze_what_the_block_left_stays_in_the_collectors_sight():
    frozen_before = gc.get_freeze_count()
    with collector_paused(freeze=False):
        assert not gc.isenabled()
        kept = [[index] for index in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before and len(kept) == 1000


@pytest.mark.parametrize(
    "command, first_of_its_stack",
    [
        (["sweep", "{study}"], "torch"),
        (["worker", "{study}"], "torch"),
        (["trial", "{base}"], "torch"),
        (["replicate", "{study}", "--top", "1", "--seeds", "2"], "torch"),
        (["export", "{study}", "--output", "{tmp}/export"], "torch"),
        (["status", "{study}"], "sqlalchemy"),
        (["analyze", "{study}"], "alembic"),
        (["report", "{study}", "--output", "{tmp}/report.html"], "plotly"),
    ],
)
def test_a_command_imports_its_stack_with_the_collector_paused(write_fast_study, tmp_path, command, first_of_its_stack):
    """The process ends at the first import of its stack's package, saying whether the collector was running then."""
    study_file = write_fast_study(n_trials=1)
    argv = [part.format(study=study_file, base=study_file.parent / "base.yaml", tmp=tmp_path) for part in command]
    script = textwrap.dedent(
        f"""
        import gc, os, sys

        class TellAtImport:
            def find_spec(self, name, path=None, target=None):
                if name == {first_of_its_stack!r}:
                    print("collector running" if gc.isenabled() else "collector paused", flush=True)
                    os._exit(0)
                return None

        sys.meta_path.insert(0, TellAtImport())
        from sweeper.cli import main
        main({argv!r})
        print("never imported {first_of_its_stack}", flush=True)
        """
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.stdout.strip() == "collector paused", (finished.stdout, finished.stderr[-2000:])
