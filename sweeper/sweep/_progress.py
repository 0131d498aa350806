"""Counting a study's trials toward its target, and the live progress line."""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..metrics import INTERRUPTED
from ..storage import TrialRecord, pareto_front, rerun_map


def replaced_by_retry(trials: list[FrozenTrial]) -> set[int]:
    """Trial numbers of failed trials that a WAITING/later copy re-runs (their worker died)."""
    return set(rerun_map(trials))


REPEATED_CONFIGURATION = "repeated configuration"
# Failures that are not the configuration's fault: the trial is run again (or another drawn) instead.
NOT_COUNTED_FAILURES = (INTERRUPTED, REPEATED_CONFIGURATION)


def counts_toward_target(trial: FrozenTrial, retried: set[int]) -> bool:
    """Finished or in-flight trials count; an interrupted one, one re-queued after its worker died, and one refused
    for repeating another's configuration do not, so a resumed sweep still reaches its target."""
    if trial.state == TrialState.FAIL:
        return TrialRecord.of(trial).failure_reason not in NOT_COUNTED_FAILURES and trial.number not in retried
    return True


def trials_toward_target(study: optuna.Study) -> int:
    trials = study.get_trials(deepcopy=False)
    retried = replaced_by_retry(trials)
    return sum(counts_toward_target(t, retried) for t in trials)


@dataclass
class SweepProgress:
    done: int
    running: int
    failed: int
    pruned: int
    pareto_size: int
    target: int | None


def read_progress(study: optuna.Study, target: int | None) -> SweepProgress:
    trials = study.get_trials(deepcopy=False)
    retried = replaced_by_retry(trials)
    # interrupted, re-queued and repeat-refused trials are not counted: `done` never passes the target for them
    trials_counted = [t for t in trials if counts_toward_target(t, retried)]
    states = [t.state for t in trials_counted]
    return SweepProgress(
        done=sum(s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for s in states),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        failed=states.count(TrialState.FAIL),
        pruned=states.count(TrialState.PRUNED),
        pareto_size=len(pareto_front(study)),
        target=target,
    )


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:d}:{seconds:02d}"


class ProgressLine:
    """`trials 12/24 · 1 running · 2 failed · Pareto front 4 · 2:31 elapsed · ETA 2:18`.

    The ETA extrapolates from trials finished since this sweep started, not from earlier runs of the study."""

    def __init__(self, study: optuna.Study, target: int | None, stream=None):
        import sys

        self.study, self.target = study, target
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.done_at_start = read_progress(study, target).done
        self.tty = self.stream.isatty()
        self._last_counts: str | None = None

    @staticmethod
    def _counts(line: str) -> str:
        return line.rsplit(" · ", 2)[0]  # without elapsed and ETA

    def render(self) -> str:
        progress = read_progress(self.study, self.target)
        elapsed = time.monotonic() - self.started
        finished_here = progress.done - self.done_at_start
        total = f"/{progress.target}" if progress.target else ""
        eta = "ETA -"
        if progress.target and finished_here > 0:
            remaining = max(0, progress.target - progress.done)
            eta = f"ETA {_clock(elapsed / finished_here * remaining)}"
        pruned = f"{progress.pruned} pruned · " if progress.pruned else ""
        return (
            f"trials {progress.done}{total} · {progress.running} running · {progress.failed} failed · {pruned}"
            f"Pareto front {progress.pareto_size} · {_clock(elapsed)} elapsed · {eta}"
        )

    def show(self, final: bool = False) -> None:
        line = self.render()
        if not self.tty and not final:
            # a log file gets a line when something changed, not one every poll
            if self._counts(line) == self._last_counts:
                return
            self._last_counts = self._counts(line)
        if self.tty and not final:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()
