"""The sweep's hand-off: the report and the Pareto export a `sweeper sweep` command leaves when its trials are done.

The report needs the full analysis (importances, correlations, effect shapes: SciPy, scikit-learn and plotly, about
half a second to import); the export only the trials and their Pareto front, and TRL and PEFT to check each config it
writes (the training stack, which the sweep has imported). So a sweep command starts a helper process first
(`HandOffHelper.start`): while the command imports the training stack (about 4 s on one core), the helper imports the
analysis stack on another, then waits. When the trials are done the helper analyses the study and draws the report
while the command exports the Pareto front from its trials (`analyze_study(trials_only=True)`, as `sweeper export`
does); the command prints what the helper printed and returns its exit code where it failed. Where no helper started
or it is gone (killed), the command draws the report itself: the same files and lines, later by the imports.

The helper reads its one request (the storage URL, the study's name and the report's path; never on a command line:
the URL may hold a password) from its standard input. A command that is interrupted or fails kills it; one that dies
outright closes that input, and the helper, waiting for a request, ends.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HAND_OFF_OWNER = ".storage"  # in a hand-off folder: the (redacted) storage URL whose study wrote it
HAND_OFF_STATE = ".study-state"  # in a hand-off folder: the fingerprint of the study its report and export show
# What opening a study, analysing it and drawing its report import, much of it late (Optuna's schema check through
# alembic, plotly's figure classes): what every such command needs, imported ahead by `sweeper analyze` and `sweeper
# report`; and the statistics a study of a few trials never reaches (importances, effect shapes: scikit-learn, SciPy's
# statistics), which only the helper imports ahead, being idle until the trials end. One left out costs time, not
# correctness.
STUDY_STACK = (
    "alembic.command", "alembic.config", "alembic.migration", "alembic.script", "sqlalchemy.dialects.sqlite",
    "sweeper.storage", "sweeper.analysis",
)
REPORT_STACK = ("sweeper.report", "plotly.graph_objects", "plotly.validator_cache", "plotly.colors", "plotly.animation")
STATISTICS_STACK = ("sweeper.analysis._ard_kernel", "scipy.stats", "optuna.importance")
_RECEIVED = "sweeper hand-off helper: request received\n"  # its first line once it has the request: it took the job


def hand_off_folder(storage_url: str, study_name: str) -> Path:
    """Where a sweep leaves its report and export: beside a SQLite file (runs/default.db -> runs/<study_name>/),
    else runs/<study_name>/ under the working directory. Shown relative to the working directory when inside it.
    A folder another storage's study of the same name wrote (see HAND_OFF_OWNER) is left alone: this storage's
    goes to <study_name>-<8 hex digits of its URL>/."""
    from sqlalchemy.engine import make_url

    from .storage import redact_url

    url = make_url(storage_url)
    base = Path(url.database).parent if url.get_backend_name() == "sqlite" else Path("runs")
    folder = base.absolute() / study_name
    owner = folder / HAND_OFF_OWNER
    redacted = redact_url(storage_url)
    if owner.is_file() and owner.read_text(encoding="utf-8").strip() != redacted:
        folder = folder.with_name(f"{study_name}-{hashlib.sha256(redacted.encode()).hexdigest()[:8]}")
    return folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder


def claim_hand_off_folder(folder: Path, storage_url: str) -> None:
    from .storage import redact_url

    folder.mkdir(parents=True, exist_ok=True)
    (folder / HAND_OFF_OWNER).write_text(redact_url(storage_url) + "\n", encoding="utf-8")


def study_state(storage, study_name: str) -> str:
    """A fingerprint of everything the hand-off shows: each trial's number, state, values and completion time, the
    study's attributes, its replicates', and sweeper's version. Equal fingerprints, equal report and export."""
    return _fingerprint(storage, study_name)[0]


def _fingerprint(storage, study_name: str) -> tuple[str, int]:
    """`study_state`, and how many of the study's trials completed: both from one read of its trials."""
    from importlib import metadata

    import optuna

    from .storage import replicates_study_name

    names = storage.study_names()
    digest = hashlib.sha256(metadata.version("sweeper").encode())
    completed = 0
    for name in (study_name, replicates_study_name(study_name)):
        if name not in names:
            continue
        study = optuna.load_study(study_name=name, storage=storage.optuna)
        digest.update(json.dumps(study.user_attrs, sort_keys=True, default=str).encode())
        for trial in study.get_trials(deepcopy=False):
            digest.update(repr((trial.number, trial.state.name, trial.values, trial.datetime_complete)).encode())
            completed += name == study_name and trial.state == optuna.trial.TrialState.COMPLETE
    return digest.hexdigest(), completed


def write_hand_off(study_name: str, storage, helper: HandOffHelper | None = None) -> int:
    """The report and the Pareto export, once the study has completed trials; the report drawn by `helper` where it
    is alive, while this process exports. Skipped when nothing they show has changed since they were written:
    resuming a finished large study costs no analysis. Returns 0, or the exit code of an error the helper printed;
    an error here raises."""
    from .analysis import analyze_study
    from .export import export_pareto
    from .report import write_report

    folder = hand_off_folder(storage.url, study_name)
    state, completed = _fingerprint(storage, study_name)
    written = folder / HAND_OFF_STATE
    if written.is_file() and written.read_text(encoding="utf-8").strip() == state and \
            (folder / "report.html").is_file() and (folder / "export" / "manifest.yaml").is_file():
        print(f"report and export in {folder}: unchanged, the study has no new trials since they were written")
        return 0
    if not completed:
        return 0
    report = folder / "report.html"
    try:
        claim_hand_off_folder(folder, storage.url)
        written.unlink(missing_ok=True)  # a hand-off cut short must not pass for a finished one
        drawing = helper is not None and helper.draw_report(study_name, storage.url, report)
        # the export reads the trials and their Pareto front only, where the helper analyses the whole study
        analysis = analyze_study(study_name, storage, trials_only=drawing)
        try:
            manifest = export_pareto(analysis, folder / "export")
        except BaseException:
            if drawing:
                helper.close()
            raise
        code = helper.report_drawn() if drawing else None
        if code:  # it said why; without the state file the next run redraws
            return code
        if code is None:  # no helper, or it is gone: this process draws the report
            write_report(analysis if not drawing else analyze_study(study_name, storage), report)
        written.write_text(state + "\n", encoding="utf-8")
    except OSError as error:
        if error.filename is None:  # a write that fails (disk full) names no file: say where it went
            error.filename = str(folder)
        raise
    print(f"report: {report}\nexport: {folder / 'export'} ({len(manifest.trials)} Pareto-front configs, manifest.yaml)")
    return 0


class HandOffHelper:
    """A process that imports the analysis stack while its sweep command imports the training stack, then draws
    the report when the trials are done (see the module's docstring). `start` it first thing, `draw_report` and
    `report_drawn` at the hand-off, `close` always (a context manager)."""

    def __init__(self, process: subprocess.Popen | None) -> None:
        self._process = process
        self.drew_report = False  # True once the helper, not this process, wrote a report

    @classmethod
    def start(cls, debug: bool = False) -> HandOffHelper:
        """A helper, where this process has the training stack still to import (its imports hide the helper's);
        a process that has it (an embedding program, the tests) draws the report itself."""
        return cls(None) if "torch" in sys.modules else cls.spawn(debug)

    @classmethod
    def spawn(cls, debug: bool = False) -> HandOffHelper:
        """A helper, whatever this process has imported."""
        command = [sys.executable, "-m", "sweeper.hand_off"] + (["--debug"] if debug else [])
        try:
            # its own process group: a Ctrl-C at the terminal reaches the command, which ends the helper
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                process_group=0,
            )
        except OSError:  # no process to spare: the command draws the report itself
            process = None
        return cls(process)

    def draw_report(self, study_name: str, storage_url: str, path: Path) -> bool:
        """Ask the helper to analyse the study and write its report to `path`; False where no helper is alive."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        request = {"storage": storage_url, "study_name": study_name, "report": str(path)}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()  # its one request: it reads a line (`report_drawn` closes its input)
        except BrokenPipeError:  # it ended since the poll
            return False
        return True

    def report_drawn(self) -> int | None:
        """Wait for the report: the helper's exit code, its output printed here. None where it did not take the
        request (it failed before, or was killed while drawing): the caller draws the report."""
        process, self._process = self._process, None
        try:
            out, err = process.communicate()
        except BaseException:  # a stop signal while it draws: the command stops, and so does the helper
            process.kill()
            process.wait()
            raise
        if process.returncode < 0 or not out.startswith(_RECEIVED):
            return None
        sys.stdout.write(out.removeprefix(_RECEIVED))
        sys.stderr.write(err)
        self.drew_report = process.returncode == 0
        return process.returncode

    def close(self) -> None:
        """End the helper now, whatever it is doing: the command failed, was interrupted, or had nothing to hand
        off. Before its request it has written nothing; a report it was drawing has no state file beside it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.communicate()

    def __enter__(self) -> HandOffHelper:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _serve_one_request(debug: bool) -> int:
    """The helper's side: import the analysis stack, wait for the study, write its report."""
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the command's to handle: it ends the helper
    from ._command import import_paused

    # the point of the helper: imported while the command imports the training stack
    import_paused((*STUDY_STACK, *STATISTICS_STACK, *REPORT_STACK))
    import optuna

    from .analysis import analyze_study
    from .report import write_report
    from .storage import STORAGE_RETRY_S, Storage, storage_failures_explained

    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # as the command's: storage retries, one line
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    line = sys.stdin.readline()
    if not line:  # the command ended without a hand-off
        return 0
    request = json.loads(line)
    sys.stdout.write(_RECEIVED)
    with storage_failures_explained(request["storage"]):
        # the sweep's storage: a server that went away during the sweep is restarting, so opening rides through it
        with Storage.for_reading(request["storage"], retry_s=STORAGE_RETRY_S) as storage:
            analysis = analyze_study(request["study_name"], storage)
            if analysis.completed:  # the command asks only then; a study emptied since has nothing to draw
                write_report(analysis, request["report"])
    return 0


if __name__ == "__main__":
    from sweeper._command import exit_without_teardown, run_command
    from sweeper.hand_off import _serve_one_request as serve

    debug = "--debug" in sys.argv[1:]
    # out without the teardown, which the sweep would wait on
    exit_without_teardown(lambda: run_command(lambda: serve(debug), debug))
