"""The Optuna objective: sample -> training config -> trial -> stored metrics and curves -> objective values."""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable

import optuna
from transformers import TrainerCallback

from ..config import ConfigError
from ..metrics import INTERRUPTED
from ..storage import CurveStore, TrialRecord, config_hash, library_versions, record_failure, record_trial_result, store
from ..study import StudySpec
from ..training import TrainingPack, TrialReuse
from ..trial import TrialFailure, run_trial
from ._intermediate import IntermediateEvaluations, PeerRungs
from ._progress import REPEATED_CONFIGURATION
from ._signals import received_stop

log = logging.getLogger(__name__)
NON_FINITE_OBJECTIVE = "non-finite objective"
# A sampler whose suggestion costs more than this share of a trial's training is the sweep's bottleneck (the GP
# sampler grows with the cube of the trials: seconds per suggestion at hundreds of trials): the worker says so once.
SAMPLER_SHARE_WARNED = 0.25
# Trials whose parameters a new trial must not repeat: finished ones, and ones another worker is running now.
_HELD_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)


def sampler_cost_warning(sampler: str, suggest_s: float, runtime_s: float, trial_number: int) -> str | None:
    """The warning for a suggestion that cost more than SAMPLER_SHARE_WARNED of the trial's training, else None."""
    if runtime_s <= 0 or suggest_s <= SAMPLER_SHARE_WARNED * runtime_s:
        return None
    return (
        f"the {sampler} sampler took {suggest_s:.1f} s to suggest trial {trial_number}, {suggest_s / runtime_s:.0%} "
        f"of its training ({runtime_s:.1f} s): at this study size the sampler slows the sweep. "
        "Fix: `sampler: {name: tpe}` in the study file suggests in milliseconds"
    )


def repeated_trial(trial: optuna.Trial, inputs_digest: str | None = None) -> int | None:
    """The number of another trial of the study with exactly this trial's parameters, or None. With
    `inputs_digest`, a trial that ran on other study inputs (data or base config changed since) is no repeat."""
    for other in trial.study.get_trials(deepcopy=False, states=_HELD_STATES):
        if other.number == trial.number or other.params != trial.params:
            continue
        ran_on = TrialRecord.of(other).study_inputs
        if inputs_digest is None or ran_on is None or ran_on == inputs_digest:
            return other.number
    return None


class StopWhenSet(TrainerCallback):
    """Stops a trial at its next micro-step or evaluation batch, as Ctrl-C would, when the worker is stopping.
    In a packed worker's trial threads (signals reach the main thread only) once `event` is set; in a sequential
    worker when a stop signal was received but its exception was lost (see `received_stop`)."""

    def __init__(self, event: threading.Event | None = None):
        self.event = event

    def _check(self, *args, **kwargs):
        received = received_stop()
        if self.event is None:
            if received is not None:
                raise received
            return
        if received is not None:
            self.event.set()
        if self.event.is_set():
            raise KeyboardInterrupt("the worker is stopping")

    on_step_begin = on_substep_end = on_step_end = on_prediction_step = _check


class TrialObjective:
    """Called by `Study.optimize` once per trial. A failure is recorded (user attribute `failure_reason`) and
    raised as TrialFailure, which the worker's `optimize(catch=...)` turns into a FAIL without stopping."""

    def __init__(
        self,
        spec: StudySpec,
        curves: CurveStore,
        device_count: int = 1,
        on_trial_created: Callable[[], None] | None = None,
        reuse: TrialReuse | None = None,
        refuse_repeats: bool = True,
        inputs_digest: str | None = None,
        pack: TrainingPack | None = None,
        stop: threading.Event | None = None,
    ):
        self.spec, self.curves, self.device_count = spec, curves, device_count
        self.peers = PeerRungs(spec, curves)  # the peers' rung vectors, kept from trial to trial
        self.on_trial_created = on_trial_created
        self.reuse = reuse  # the worker's base model and tokenized data, shared by its trials
        self.versions = library_versions()
        # replicates repeat a configuration on purpose (with another seed); sweeps must not, unless the study asks
        self.refuse_repeats = refuse_repeats and not spec.allow_repeats
        self.consecutive_repeats = 0
        self.inputs_digest = inputs_digest  # the version of the study's inputs this worker runs on
        self.trial_number: int | None = None  # the trial being run, or last run
        self.warned_sampler_cost = False
        self.pack = pack  # trains this objective's trials together with other slots' trials (packed worker)
        self.stop = stop  # set by a packed worker's main thread on a stop signal: the trial stops at its next step

    def __call__(self, trial: optuna.Trial) -> list[float]:
        self.trial_number = trial.number  # the worker re-queues it when the system stops the worker mid-trial
        try:
            return self._run(trial)
        except KeyboardInterrupt:  # Ctrl-C or a stop signal, wherever in the trial it lands
            record_failure(trial, INTERRUPTED)
            raise

    def _run(self, trial: optuna.Trial) -> list[float]:
        if self.on_trial_created:
            self.on_trial_created()
        # which machine and process ran it (logs, scheduler jobs, drills); read now, not at import: a fork has its own
        store(trial, worker=f"{socket.gethostname()}:{os.getpid()}")
        started = time.perf_counter()
        self.spec.space.suggest(trial)
        suggest_s = time.perf_counter() - started
        store(trial, suggest_s=round(suggest_s, 4))
        if self.inputs_digest:
            store(trial, study_inputs=self.inputs_digest)
        if self.pack is not None:
            store(trial, pack_size=self.pack.size)
        self._refuse_repeat(trial)
        try:
            config = self.spec.training_config(trial.params)
        except ConfigError as error:
            self._fail(trial, TrialFailure("invalid config", str(error)))
        config_values = config.model_dump(mode="json")
        fingerprint = config_hash(config_values)
        store(
            trial, training_config=config_values, config_hash=fingerprint,
            effective_batch_size=config.effective_batch_size * self.device_count,
        )

        evaluations = IntermediateEvaluations(trial, self.spec, self.curves, config.orpo.beta, self.peers)
        with tempfile.TemporaryDirectory(prefix=f"sweeper-trial-{trial.number}-") as output_dir:
            try:
                callbacks = [evaluations, StopWhenSet(self.stop)]
                result = run_trial(config, output_dir, reuse=self.reuse, callbacks=callbacks, pack=self.pack)
            except TrialFailure as failure:
                self._fail(trial, failure)
        record_trial_result(
            trial, result, config_hash=fingerprint, library_versions=self.versions, device_count=self.device_count
        )
        if result.notes:
            store(trial, notes=result.notes)
        warning = sampler_cost_warning(self.spec.sampler.name, suggest_s, result.runtime_s, trial.number)
        if warning and not self.warned_sampler_cost:
            self.warned_sampler_cost = True
            log.warning(warning)
        self.curves.write(self.spec.study_name, trial.number, result.curves)
        if evaluations.decision is not None:  # stopped at a rung: stored as PRUNED, with its curve so far
            store(trial, pruned_reason=evaluations.decision.reason, pruned_at_step=evaluations.decision.step)
            raise optuna.TrialPruned(evaluations.decision.reason)
        values = self.spec.objective_values(result.eval_metrics, result.train_metrics, config.orpo.beta)
        if not all(math.isfinite(value) for value in values):
            self._fail(trial, TrialFailure(NON_FINITE_OBJECTIVE, str(dict(zip(self.spec.objective_names, values)))))
        return values

    def _refuse_repeat(self, trial: optuna.Trial) -> None:
        """A configuration already trained (or in training) teaches nothing new and would count twice in the
        analysis: store this trial as FAIL with the trial it repeats, outside the target, and draw again."""
        repeated = repeated_trial(trial, self.inputs_digest) if self.refuse_repeats else None
        if repeated is None:
            self.consecutive_repeats = 0
            return
        self.consecutive_repeats += 1
        store(trial, repeats_trial=repeated)
        self._fail(trial, TrialFailure(REPEATED_CONFIGURATION, f"same parameters as trial {repeated}"))

    def _fail(self, trial: optuna.Trial, failure: TrialFailure):
        record_failure(trial, failure.reason)
        if failure.detail:
            store(trial, failure_detail=failure.detail[:2000])
        log.warning("trial %d failed: %s", trial.number, failure)
        raise failure
