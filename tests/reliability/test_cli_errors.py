"""Errors the command line meets with one `error:` line and no traceback: a path that cannot be written, and, as
a last resort, any unexpected exception (`--debug` shows its traceback)."""

from __future__ import annotations

import pytest

from sweeper.cli import main


@pytest.mark.integration
def test_an_output_path_that_cannot_be_written_is_one_error_line(known_study, tmp_path, capsys):
    from _known_study import write_study_file

    study_name, url = known_study
    study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
    (tmp_path / "a-file").write_text("")
    for output in (tmp_path, tmp_path / "a-file" / "report.html"):
        assert main(["report", str(study_file), "-o", str(output)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {tmp_path}") and err.count("\n") == 1 and "Traceback" not in err


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import sweeper.cli

    def broken(args):
        raise RuntimeError("Symlink loop from '/data/base.yaml'")

    monkeypatch.setattr(sweeper.cli, "cmd_status", broken)
    assert main(["status", "studies/default.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected RuntimeError: Symlink loop from '/data/base.yaml'") and "--debug" in err
    with pytest.raises(RuntimeError):
        main(["--debug", "status", "studies/default.yaml"])
