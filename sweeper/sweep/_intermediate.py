"""What a trial does at each of its evaluations: store the points logged so far, and, with a pruner, decide at each
rung whether the trial goes on (the rules are in `_pruning.py`; multi_metric is OptunaHub's, vendored)."""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import optuna
from optuna.trial import TrialState
from transformers import TrainerCallback

from .._command import collector_paused
from .._vendor.multi_metric_pruner import MultiMetricPruner, MultiMetricPrunerTrial
from .._vendor.multi_metric_pruner._pruner import _USER_ATTR_KEY as MULTI_METRIC_VALUES
from ..metrics import EVAL, TRAIN, CurvePoint, curve_points, split_of_log
from ..storage import CurveStore, StoredPoint, store, stored_fields
from ..study import StudySpec
from ._pruning import (
    MultiMetricDecision, PromotionDecision, RungDecision, curves_by_trial, decide, decide_promotion, rung_threshold,
    step_at_rung, threshold_at_rung, vector_at_rung,
)

log = logging.getLogger(__name__)

# Trials whose stored evaluations are peers at a rung: failed ones are not (their curves may end in NaN).
PEER_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
# multi_metric_pruner's ranking needs finite numbers: a non-finite objective is reported as this, in the worst
# direction (far beyond any loss or margin)
WORST_REPORTED = 1e15
Decision = RungDecision | PromotionDecision | MultiMetricDecision
RUNG_FIELDS = ("training_config", "planned_steps")  # what a peer's vector at a rung needs of its record
MAX_STEPS_SELECTED = 1000  # rung steps named in one read; beside 5,000 trial numbers, well under SQLite's 32,766
# rung thresholds found by one aggregate each (a study has a few: its rungs times its distinct planned steps); past
# this many (planned steps that vary trial by trial), every evaluation step is read and the rungs placed here
MAX_THRESHOLD_READS = 64


class PeerRungs:
    """The peers' objective vectors at each rung, for one worker's pruning decisions (dominated, asha).

    A finished peer's vectors never change: its curves are read once per worker and its vector at every rung kept;
    a running peer's are read again at each decision. A decision then reads the curves of the running and newly
    finished trials, not the whole study's (at 10,000 trials that read was seconds per decision, at every rung of
    every trial)."""

    def __init__(self, spec: StudySpec, curves: CurveStore):
        self.spec, self.curves = spec, curves
        self._finished: dict[int, dict[float | int, list[float | None] | None]] = {}
        self.trials_read: list[int] = []  # the trial numbers whose curves the last decision read

    def vectors(
        self, study: optuna.Study, rung: float | int, own_number: int, own_beta: float
    ) -> list[list[float | None]]:
        """The vectors at `rung` of the peers that reached it; `own_beta` stands in for a peer that stored no
        config (such a peer is read again at every decision: its vector depends on who asks)."""
        peers = [t for t in study.get_trials(deepcopy=False, states=PEER_STATES) if t.number != own_number]
        unread = {t.number: stored_fields(t, RUNG_FIELDS) for t in peers if t.number not in self._finished}
        self.trials_read = list(unread)
        # A first decision builds a few hundred thousand short-lived rows and dicts, which drove the collector into a
        # full collection of the worker's trial cache (about a million objects): 0.31 s against 0.24 s with it paused,
        # at 10,000 trials (bench/pruning_decision.py). They hold no cycles: freed as they go out of scope.
        with collector_paused(freeze=False):
            fresh = curves_by_trial(self._points(unread)) if unread else {}
            vectors = []
            for trial in peers:
                at_rungs = self._finished.get(trial.number)
                if at_rungs is None:
                    config, planned_steps = unread[trial.number]
                    at_rungs = self._at_rungs(config, planned_steps, fresh.get(trial.number), own_beta)
                    if trial.state.is_finished() and config is not None:
                        self._finished[trial.number] = at_rungs
                if at_rungs.get(rung) is not None:
                    vectors.append(at_rungs[rung])
            return vectors

    def _points(self, fields: dict[int, tuple]) -> list[StoredPoint]:
        """The stored points the vectors of these trials (trial number -> its RUNG_FIELDS) at every rung need: only
        the metrics the objectives read (a curve holds 12 per split at every logged step), and, where they read
        validation metrics only, only the points at each trial's rung steps (found first, `_rung_steps`: at 10,000
        trials reading every validation point of two metrics took half of a first decision)."""
        eval_needed, train_needed = self.spec.metrics_needed()
        metrics = sorted(eval_needed | train_needed)
        if train_needed:  # a training metric at a rung is the latest logged before it: the whole curves
            return self.curves.points(self.spec.study_name, metrics=metrics, trial_numbers=list(fields))
        at_rungs = self._rung_steps(fields, metrics)
        wanted = set().union(*at_rungs.values())
        if not wanted:
            return []
        # each trial's points at any trial's rung step: its own rung step is still the first at or after its
        # threshold among them (vector_at_rung finds it again). So many distinct steps (trials of many evaluation
        # cadences) would overflow a statement's variables: then every step of those trials.
        return self.curves.points(self.spec.study_name, split=EVAL, metrics=metrics,
                                  trial_numbers=list(at_rungs),
                                  steps=sorted(wanted) if len(wanted) <= MAX_STEPS_SELECTED else None)

    def _rung_steps(self, fields: dict[int, tuple], metrics: list[str]) -> dict[int, set[int]]:
        """Each trial's rung steps, the first evaluation at or after each rung's threshold (the rule is
        `step_at_rung`'s), only for the trials that have one: one aggregate per threshold in the database, or,
        past MAX_THRESHOLD_READS thresholds, placed here among every evaluation step."""
        trials_from: dict[int, set[int]] = defaultdict(set)
        for number, (_, planned_steps) in fields.items():
            for rung in self.spec.pruner.rungs:
                threshold = threshold_at_rung(rung, planned_steps)
                if threshold is not None:
                    trials_from[threshold].add(number)
        if len(trials_from) > MAX_THRESHOLD_READS:
            steps = self.curves.steps_by_trial(self.spec.study_name, EVAL, metrics, list(fields))
            placed = {
                number: {step_at_rung(steps[number], rung, planned_steps) for rung in self.spec.pruner.rungs} - {None}
                for number, (_, planned_steps) in fields.items() if number in steps
            }
            return {number: found for number, found in placed.items() if found}
        at_rungs: dict[int, set[int]] = defaultdict(set)
        for (number, _), step in self.curves.first_steps_from(self.spec.study_name, EVAL, metrics, trials_from).items():
            at_rungs[number].add(step)
        return dict(at_rungs)

    def _at_rungs(
        self, config: dict | None, planned_steps: int | None, curve, own_beta: float
    ) -> dict[float | int, list[float | None] | None]:
        if curve is None:
            return {}
        beta = (config or {}).get("orpo", {}).get("beta", own_beta)

        def objective(eval_metrics, train_metrics):
            return self.spec.objective_values(eval_metrics, train_metrics, beta)

        found = {rung: vector_at_rung(curve, rung, planned_steps, objective) for rung in self.spec.pruner.rungs}
        return {rung: None if value is None else value[1] for rung, value in found.items()}


class IntermediateEvaluations(TrainerCallback):
    """One per trial. `decision` is the RungDecision that stopped the trial, or None when it ran to the end.
    `peers`: the worker's `PeerRungs`, kept from trial to trial (a new one reads the whole study once)."""

    def __init__(
        self, trial: optuna.Trial, spec: StudySpec, curves: CurveStore, beta: float, peers: PeerRungs | None = None
    ):
        self.trial, self.spec, self.curves, self.beta = trial, spec, curves, beta
        self.peers = peers or PeerRungs(spec, curves)
        self._reset()

    def _reset(self) -> None:
        self.pending: list[CurvePoint] = []
        self.last_train: dict[str, float] = {}
        self.decision: Decision | None = None
        self.thresholds: list[tuple[float | int, int]] = []
        self.checked: set[float | int] = set()

    def on_train_begin(self, args, state, control, **kwargs):
        self._reset()  # an out-of-memory retry trains again from the start with the same callback
        store(self.trial, planned_steps=state.max_steps)
        if self.spec.pruner.enabled:
            self.thresholds = [(rung, rung_threshold(rung, state.max_steps)) for rung in self.spec.pruner.rungs]

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        self.pending.extend(curve_points(state.global_step, logs))
        if split_of_log(logs) == TRAIN:
            self.last_train.update({key: float(value) for key, value in logs.items() if isinstance(value, int | float)})

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        # the evaluation's own log came through on_log just before: its points go out with the training ones since
        self.curves.add(self.spec.study_name, self.trial.number, self.pending)
        self.pending = []
        step = state.global_step
        if self.decision is not None or step >= state.max_steps:
            return  # a rung at the last step would save nothing
        for rung, threshold in self.thresholds:
            if rung in self.checked or threshold > step:
                continue
            self.checked.add(rung)
            decision = self._decide(rung, step, metrics or {})
            if decision is None:
                continue
            log.info("trial %d: %s", self.trial.number, decision.reason)
            if decision.prune:
                self.decision = decision
                control.should_training_stop = True
                break
        return control

    def _decide(self, rung: float | int, step: int, metrics: dict[str, float]) -> Decision | None:
        try:
            own = self.spec.objective_values(metrics, self.last_train, self.beta)
        except KeyError as error:  # an objective needs a metric this evaluation lacks: no decision
            log.warning("trial %d: no pruning decision at rung %s: %s", self.trial.number, rung, error)
            return None
        own = [value if math.isfinite(value) else math.nan for value in own]
        pruner = self.spec.pruner
        if pruner.name == "multi_metric":
            return self._decide_multi_metric(rung, step, own)
        vectors = self.peers.vectors(self.trial.study, rung, self.trial.number, self.beta)
        if pruner.name == "asha":
            return decide_promotion(
                own, vectors, self.spec.directions, rung=rung, step=step, reduction_factor=pruner.reduction_factor
            )
        return decide(
            own,
            vectors,
            self.spec.directions,
            rung=rung,
            step=step,
            min_peers=pruner.min_peers,
            dominated_fraction=pruner.dominated_fraction,
        )

    def _decide_multi_metric(self, rung: float | int, step: int, own: list[float]) -> MultiMetricDecision:
        """OptunaHub's multi_metric_pruner as its README shows it (joint Pareto ranks into a MedianPruner), the
        objectives reported at the rung's index, so that trials of different lengths meet at the same rung."""
        names = self.spec.objective_names
        directions = dict(zip(names, self.spec.directions, strict=True))
        pruner = MultiMetricPruner(
            optuna.pruners.MedianPruner(n_startup_trials=self.spec.pruner.min_peers, n_warmup_steps=0),
            metric_directions=directions,
            joint=True,
        )
        worst = {name: WORST_REPORTED if way == "minimize" else -WORST_REPORTED for name, way in directions.items()}
        reported = {name: value if math.isfinite(value) else worst[name] for name, value in zip(names, own)}
        MultiMetricPrunerTrial(self.trial).report(reported, step=self.spec.pruner.rungs.index(rung))
        study = self.trial.study
        trials = study.get_trials(deepcopy=False)
        finished = sum(other.state.is_finished() and MULTI_METRIC_VALUES in other.user_attrs for other in trials)
        prune = pruner.prune(study, trials[self.trial.number])
        return MultiMetricDecision(
            rung=rung, step=step, prune=prune, finished=finished, min_peers=self.spec.pruner.min_peers
        )
