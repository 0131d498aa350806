"""`sweeper analyze` and `sweeper status` read in an 80-column terminal: no name or number cut to "…", no line
wider than the terminal, and the short column labels explained once."""

from __future__ import annotations

import io

from rich.console import Console

from _known_study import FAILED_TRIAL, FAILURE_REASON, PRUNED_REASON, PRUNED_TRIAL, write_study_file
from sweeper.cli import main
from sweeper.report import print_analysis


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_the_analysis_fits_80_columns_with_nothing_cut(known_analysis):
    output = io.StringIO()
    print_analysis(known_analysis, Console(file=output, width=80, color_system=None))
    text = output.getvalue()
    assert "…" not in text
    assert max(len(line) for line in _lines(text)) <= 80
    assert "lr = learning_rate" in text and "batch = per_device_train_batch_size" in text
    # the claims read as blocks: each verdict beside its hyperparameter, the evidence on its own line
    assert "- learning rate (learning_rate): supported" in text
    assert "  rho with the gap" in text


def test_status_fits_80_columns_and_gives_each_failed_or_pruned_trial_its_reason(known_study, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    study_file = write_study_file(tmp_path / "known.yaml", *known_study)
    assert main(["status", str(study_file)]) == 0
    text = capsys.readouterr().out
    assert "…" not in text
    assert max(len(line) for line in _lines(text)) <= 80
    header = next(line for line in _lines(text) if line.strip().startswith("#"))
    assert header.split()[-6:] == ["lr", "batch", "accum", "dropout", "wd", "beta"]
    assert f"#{FAILED_TRIAL} fail: {FAILURE_REASON}" in text
    assert f"#{PRUNED_TRIAL} pruned: {PRUNED_REASON}" in " ".join(text.split())  # a long reason wraps
    assert "wd = weight_decay" in text


def test_status_of_a_study_with_no_trials_yet(tmp_path, capsys):
    import optuna

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.create_study(study_name="empty", storage=url, directions=["minimize", "maximize"])
    assert main(["status", str(write_study_file(tmp_path / "empty.yaml", "empty", url))]) == 0
    assert "state" in capsys.readouterr().out


def test_status_of_a_large_study_lists_the_trials_worth_a_line_and_all_on_request(tmp_path, capsys):
    import numpy as np
    import optuna

    from sweeper.cli import STATUS_LATEST, STATUS_ROWS

    from sweeper.storage import open_storage

    url = f"sqlite:///{tmp_path / 'large.db'}"
    storage = open_storage(url, heartbeat_interval_s=None)  # write-ahead log: the trials' commits in a fraction
    study = optuna.create_study(study_name="large", storage=storage, directions=["minimize", "maximize"])
    n_trials = STATUS_ROWS + 5
    for loss, margin in np.random.default_rng(0).random((n_trials, 2)):
        trial = study.ask()
        trial.suggest_float("orpo.learning_rate", 1e-5, 1e-3, log=True)
        study.tell(trial, [float(loss), float(margin)])
    running = study.ask()  # an early number would not be among the latest: it is shown for running
    pareto = {t.number for t in study.best_trials}
    study_file = write_study_file(tmp_path / "large.yaml", "large", url)

    def numbers_listed(text: str) -> set[int]:  # the table's rows: a trial number, then its state
        rows = [line.split() for line in _lines(text)]
        return {int(row[0].rstrip("*")) for row in rows if len(row) > 1 and row[1] in ("complete", "running")}

    assert main(["status", str(study_file)]) == 0
    text = capsys.readouterr().out
    latest = set(range(n_trials + 1 - STATUS_LATEST, n_trials + 1))
    assert numbers_listed(text) == pareto | latest | {running.number}
    assert f"of {n_trials + 1} trials shown ({n_trials} complete, 1 running)" in " ".join(text.split())
    assert main(["status", str(study_file), "--all"]) == 0
    assert numbers_listed(capsys.readouterr().out) == set(range(n_trials + 1))
