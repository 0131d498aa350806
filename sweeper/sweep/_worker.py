"""A worker: joins the study and runs trials until the study-wide target or the timeout is reached."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from ..metrics import INTERRUPTED
from ..storage import (
    RETRIED_FROM, RETRY_HISTORY, Storage, TrialRecord, TrialSlotLock, beating_trials, time_silent_trials,
)
from ..config import build_training_config
from ..study import StudySpec, beta_scaled_warnings
from ..training import TrainingPack, TrialReuse, load_base_model
from ..trial import TrialFailure
from ._identity import StudyInputs
from ._objective import TrialObjective
from ._optuna_study import open_study
from ._progress import ProgressLine, trials_toward_target
from ._signals import StopRequested, received_stop

log = logging.getLogger(__name__)


MAX_CONSECUTIVE_REPEATS = 20
# A trial stopped by SIGTERM (a scheduler's cancel or preemption, a pod's eviction) goes back into the queue this many
# times at most; a configuration that keeps being stopped is then left to the sampler.
MAX_REQUEUES_AFTER_STOP = 3


@dataclass(frozen=True)
class HeartbeatSettings:
    """A worker beats every `interval_s`; a RUNNING trial silent for `grace_s` is failed and queued again."""

    interval_s: int = 10
    grace_s: int = 60


@contextmanager
def storage_for(spec: StudySpec, heartbeat: HeartbeatSettings, given: Storage | None) -> Iterator[Storage]:
    """The command's storage where it passed one (see `Storage`); else the study's, opened here and closed after."""
    if given is not None:
        yield given
        return
    with Storage.open(spec.storage, heartbeat.interval_s, heartbeat.grace_s) as opened:
        yield opened


def target_reached(study: optuna.Study, spec: StudySpec) -> bool:
    if spec.n_trials is None:
        return False
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return not waiting and trials_toward_target(study) >= spec.n_trials


def requeue_dead_workers_trials(study: optuna.Study) -> None:
    """Fail each RUNNING trial whose heartbeat is older than the grace period (its worker died) and queue a copy. A
    RUNNING trial that never beat starts its grace period now (`time_silent_trials`)."""
    time_silent_trials(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def requeue_stopped_trial(study: optuna.Study, number: int | None) -> int | None:
    """Queue a copy (same parameters, WAITING) of trial `number` if it was stored as FAIL `interrupted`, so that the
    next worker to ask, or this study resumed, runs it first. Returns the copy's number, or None. The copy carries
    Optuna's retry attributes, as a heartbeat re-queue does, and none of the failed trial's user attributes."""
    if number is None:
        return None
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state != TrialState.FAIL or TrialRecord.of(trial).failure_reason != INTERRUPTED:
        return None
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), number]
    if len(history) > MAX_REQUEUES_AFTER_STOP:
        return None
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            system_attrs={RETRIED_FROM: history[0], RETRY_HISTORY: history},
        )
    )
    return study.get_trials(deepcopy=False)[-1].number


def run_worker(
    spec: StudySpec,
    heartbeat: HeartbeatSettings = HeartbeatSettings(),
    show_progress: bool = True,
    device_count: int = 1,
    inputs: StudyInputs | None = None,
    allow_changed_inputs: bool = False,
    storage: Storage | None = None,
    reuse: TrialReuse | None = None,
) -> optuna.Study:
    """Run trials until the target or timeout. Ctrl-C propagates as KeyboardInterrupt after the running trial
    is recorded as FAIL with reason `interrupted`; after SIGTERM a copy of that trial is queued as well. `inputs`
    (from `open_checked` or `check_study_inputs`) are checked against what the study was built on, and each trial
    records their version. With `spec.pack` above 1 the worker trains that many trials at once on one base model
    (`_run_packed`). `storage`: the command's (see `Storage`); without it the worker opens the study's own. `reuse`:
    what the trials reuse (see `TrialReuse`), e.g. the one `open_checked` put the checked pairs in; a new one without."""
    with storage_for(spec, heartbeat, storage) as opened:
        return _run_worker(
            spec, opened, heartbeat, show_progress, device_count, inputs, allow_changed_inputs, reuse or TrialReuse()
        )


def _run_worker(
    spec: StudySpec,
    storage: Storage,
    heartbeat: HeartbeatSettings,
    show_progress: bool,
    device_count: int,
    inputs: StudyInputs | None,
    allow_changed_inputs: bool,
    reuse: TrialReuse,
) -> optuna.Study:
    study = open_study(spec, storage.optuna, inputs, allow_changed_inputs)
    for warning in beta_scaled_warnings(spec):
        log.warning(warning)
    progress = ProgressLine(study, spec.n_trials) if show_progress else None
    # What is alive now (imported modules: ~0.5M objects with torch and TRL) lives as long as the worker. Frozen, it
    # is skipped by the full collections each trial triggers (the trainer's and ours), about 0.3 s each on a CPU.
    gc.collect()
    gc.freeze()
    try:
        if spec.pack > 1:
            _run_packed(spec, study, storage, progress, heartbeat, device_count, inputs, reuse)
        else:
            slot = TrialSlotLock(storage.url, spec.study_name, engine=storage.engine)
            # the new trial exists (and counts toward the target) once the objective runs: other workers may check now
            objective = TrialObjective(
                spec, storage.curves, device_count, on_trial_created=slot.release, reuse=reuse,
                inputs_digest=inputs.digest if inputs else None,
            )
            try:
                _run_trials(spec, study, objective, slot, progress, heartbeat, time.monotonic())
            finally:
                slot.close()
    finally:
        gc.unfreeze()
        if progress:
            progress.show(final=True)
    return study


def _run_trials(
    spec: StudySpec,
    study: optuna.Study,
    objective: TrialObjective,
    slot: TrialSlotLock,
    progress: ProgressLine | None,
    heartbeat: HeartbeatSettings,
    started: float,
    stopping: threading.Event | None = None,
) -> None:
    """One trial after another until the target or the timeout (a packed worker runs one of these per slot, each
    with its own slot lock, and sets `stopping` to end them all)."""
    while stopping is None or not stopping.is_set():
        received = received_stop()  # a stop signal whose exception was lost: never start another trial
        if received is not None:
            if stopping is None:
                raise received
            stopping.set()
            break
        if spec.timeout_s is not None and time.monotonic() - started >= spec.timeout_s:
            break
        slot.acquire()
        try:
            requeue_dead_workers_trials(study)  # before counting: a dead worker's trial must not count
            reached = target_reached(study, spec)
            if reached and not beating_trials(study):
                break
            if not reached:
                refusal = sampler_refusal(spec, study)
                if refusal is not None:
                    log.warning(refusal)
                    break
                try:
                    study.optimize(objective, n_trials=1, catch=(TrialFailure,))
                except StopRequested as stop:
                    _requeue_after_sigterm(study, stop, objective.trial_number)
                    raise
                if objective.consecutive_repeats >= MAX_CONSECUTIVE_REPEATS:
                    log.warning(
                        "the sampler proposed %d configurations in a row that trials had already run: the space "
                        "looks exhausted, so this worker stops. Widen the space, or set allow_repeats: true",
                        objective.consecutive_repeats,
                    )
                    break
        finally:
            slot.release()
        if reached:
            # Other workers' running trials make up the target. Stay until they end: if one's worker dies, its
            # trial is re-queued after the grace period, and this worker runs it.
            if stopping is None:
                time.sleep(heartbeat.interval_s)
            elif stopping.wait(heartbeat.interval_s):
                break
            continue
        if progress:
            progress.show()


def sampler_refusal(spec: StudySpec, study: optuna.Study) -> str | None:
    """Why this worker must not ask its sampler for another trial, or None: the GP sampler past `max_trials`
    completed trials (asking would take minutes and gigabytes, then more with every trial; the check comes before
    the trial is created, so nothing is left running)."""
    if spec.sampler.name != "gp":
        return None
    completed = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if completed <= spec.sampler.max_trials:
        return None
    return (
        f"the gp sampler would suggest from {completed} completed trials, more than its max_trials "
        f"({spec.sampler.max_trials}): its cost grows with the cube of the trials (a suggestion 60 s at 2,000 on 2 "
        "cores, 4 minutes at 3,000, over 20 GB at 10,000), so this worker stops. Fix: `sampler: {name: tpe}` in the "
        "study file (it suggests in under a second at 10,000 trials), or raise `max_trials` where the machine has the "
        "memory and time"
    )


def _requeue_after_sigterm(study: optuna.Study, stop: StopRequested, number: int | None) -> None:
    # SIGTERM is the system stopping this worker (scancel, preemption, eviction), not the user giving up on the
    # trial: the configuration goes back into the queue
    if stop.signum == signal.SIGTERM:
        copy = requeue_stopped_trial(study, number)
        if copy is not None:
            log.warning("trial %d interrupted by SIGTERM: queued again as trial %d", number, copy)


def _run_packed(
    spec: StudySpec,
    study: optuna.Study,
    storage: Storage,
    progress: ProgressLine | None,
    heartbeat: HeartbeatSettings,
    device_count: int,
    inputs: StudyInputs | None,
    reuse: TrialReuse,
) -> None:
    """`spec.pack` slots, each a thread running trials one after another as a sequential worker does, all of them
    training on one TrainingPack: when a slot's trial ends, the slot asks the sampler for the next (asynchronous, as
    Optuna's samplers allow for running trials). Stop signals reach this (main) thread: it stops every slot's
    trial at its next step, each stored as FAIL `interrupted` (and queued again after SIGTERM), then re-raises."""
    spec.check_packable()
    base = build_training_config(spec.base_mapping, spec.fixed, source=f"{spec.study_name} base config")
    pack = TrainingPack(load_base_model(base), size=spec.pack)
    # `reuse` is used under the pack's turn only: one slot at a time
    stopping = threading.Event()
    shown = _Serialized(progress) if progress else None  # one progress line, written by one slot at a time
    objectives: list[TrialObjective] = []
    failures: list[BaseException] = []
    started = time.monotonic()

    def run_slot() -> None:
        # its own lock: slots ask as separate workers would
        slot = TrialSlotLock(storage.url, spec.study_name, engine=storage.engine)
        objective = TrialObjective(
            spec, storage.curves, device_count, on_trial_created=slot.release, reuse=reuse,
            inputs_digest=inputs.digest if inputs else None, pack=pack, stop=stopping,
        )
        objectives.append(objective)
        try:
            _run_trials(spec, study, objective, slot, shown, heartbeat, started, stopping)
        except BaseException as error:  # noqa: BLE001 - the main thread re-raises the first; the other slots stop
            failures.append(error)
            stopping.set()
        finally:
            slot.close()
            with ended:
                running.remove(threading.current_thread())
                ended.notify_all()

    def wait_for_slots() -> None:
        with ended:
            while running:
                ended.wait()

    slots = [threading.Thread(target=run_slot, name=f"sweeper-slot-{index}") for index in range(spec.pack)]
    running = set(slots)
    ended = threading.Condition()
    for thread in slots:
        thread.start()
    # Waited for on a condition, not by Thread.join: a signal that interrupts join() makes Python 3.11 take a
    # running thread for finished (the bpo-45274 fix releases the lock the thread still holds).
    try:
        wait_for_slots()
        received = received_stop()
        if received is not None:  # its exception was lost, but the slots saw it and stopped
            raise received
    except KeyboardInterrupt as stop:  # a stop signal, in this thread: each slot's trial stops at its next step
        stopping.set()
        wait_for_slots()
        if isinstance(stop, StopRequested):
            for objective in objectives:  # only a trial stored as FAIL `interrupted` is queued again
                _requeue_after_sigterm(study, stop, objective.trial_number)
        raise
    for thread in slots:
        thread.join()  # ended: returns at once
    real = [error for error in failures if not isinstance(error, KeyboardInterrupt)]
    if real:
        raise real[0]


class _Serialized:
    """The progress line shown by one slot at a time."""

    def __init__(self, progress: ProgressLine):
        self._progress, self._lock = progress, threading.Lock()

    def show(self, final: bool = False) -> None:
        with self._lock:
            self._progress.show(final=final)
