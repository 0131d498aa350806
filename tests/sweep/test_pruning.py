"""The pruners (dominated, asha, multi_metric): their rules on hand-built vectors and curves, the callback on a stored
study, and a real tiny sweep in which a dominated trial is stopped, stored as PRUNED, and the sampler goes on."""

from __future__ import annotations

import gc
import io
import math

import optuna
import pytest
from optuna.trial import TrialState
from transformers import TrainerControl, TrainerState, TrainingArguments

from sweeper.metrics import CurvePoint
from sweeper.storage import CurveStore, TrialRecord, open_storage, store
from sweeper.study import load_study_spec
from sweeper.sweep import ProgressLine, open_study, run_worker, trials_toward_target
from sweeper.sweep import _intermediate as intermediate
from sweeper.sweep._intermediate import IntermediateEvaluations, PeerRungs
from sweeper.sweep._pruning import (
    curves_by_trial, decide, decide_promotion, dominates, pareto_order, rung_step, rung_threshold, vector_at_rung,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
MIN_MAX = ["minimize", "maximize"]


# -- the rule


def test_dominance_respects_each_objectives_direction():
    assert dominates([1.0, 5.0], [2.0, 4.0], MIN_MAX)  # lower loss and higher margin
    assert dominates([1.0, 4.0], [2.0, 4.0], MIN_MAX)  # better in one, equal in the other
    assert not dominates([2.0, 4.0], [2.0, 4.0], MIN_MAX)  # equal is not better
    assert not dominates([1.0, 3.0], [2.0, 4.0], MIN_MAX)  # a trade-off: neither dominates
    assert not dominates([2.0, 4.0], [1.0, 3.0], MIN_MAX)
    assert dominates([1.0, 1.0], [2.0, 2.0], ["minimize", "minimize"])
    assert not dominates([1.0, 1.0], [2.0, 2.0], ["maximize", "maximize"])


def test_a_missing_or_non_finite_value_counts_as_the_worst():
    assert dominates([1.0, 0.0], [1.0, None], MIN_MAX)
    assert dominates([1.0, 0.0], [math.nan, 0.0], MIN_MAX)
    assert dominates([5.0, -9.0], [math.inf, -9.0], MIN_MAX)
    assert not dominates([None, 0.0], [1.0, 0.0], MIN_MAX)


def _decide(own, peers, min_peers=3, fraction=0.5):
    return decide(own, peers, MIN_MAX, rung=0.5, step=10, min_peers=min_peers, dominated_fraction=fraction)


def test_a_trial_dominated_by_enough_peers_stops_and_the_reason_says_by_how_many():
    peers = [[1.0, 5.0], [1.5, 4.5], [3.0, 9.0], [0.5, 0.0]]  # the first two dominate [2, 4]; the others do not
    decision = _decide([2.0, 4.0], peers)
    assert (decision.peers, decision.dominated_by, decision.needed, decision.prune) == (4, 2, 2, True)
    assert decision.reason == (
        "pruned at rung 0.5 of the schedule (evaluation at step 10): dominated by 2 of 4 trials that reached this "
        "rung (stops at 2)"
    )


def test_one_dominating_peer_short_of_the_fraction_keeps_the_trial():
    peers = [[1.0, 5.0], [3.0, 9.0], [0.5, 0.0], [2.5, 4.5]]  # only the first dominates
    decision = _decide([2.0, 4.0], peers)
    assert (decision.dominated_by, decision.needed, decision.prune) == (1, 2, False)


def test_the_fraction_rounds_up_and_needs_at_least_one_peer():
    five = [[1.0, 5.0]] * 3 + [[3.0, 9.0]] * 2
    assert _decide([2.0, 4.0], five, fraction=0.5).needed == 3  # ceil(2.5)
    assert _decide([2.0, 4.0], five, fraction=0.5).prune
    assert not _decide([2.0, 4.0], five, fraction=0.8).prune  # needs 4
    assert _decide([2.0, 4.0], five, fraction=0.01).needed == 1
    assert _decide([2.0, 4.0], [[1.0, 5.0]] * 4, fraction=1.0).prune  # every peer dominates
    assert not _decide([2.0, 4.0], [[1.0, 5.0]] * 3 + [[2.0, 4.0]], fraction=1.0).prune  # one ties


def test_no_trial_is_pruned_before_min_peers_trials_reached_the_rung():
    dominating = [[0.0, 9.0]] * 2
    decision = _decide([2.0, 4.0], dominating, min_peers=3)
    assert (decision.dominated_by, decision.needed, decision.prune) == (2, 0, False)
    assert _decide([2.0, 4.0], dominating * 2, min_peers=3).prune


def test_pareto_order_puts_the_front_first_then_each_rank_by_hypervolume_contribution():
    # minimise the loss, maximise the margin. Front: A (1, 5), B (2, 5.1), C (3, 9); rank 2: D (2, 4), E (4, 8)
    vectors = {"A": [1.0, 5.0], "B": [2.0, 5.1], "C": [3.0, 9.0], "D": [2.0, 4.0], "E": [4.0, 8.0]}
    order = [list(vectors)[index] for index in pareto_order(list(vectors.values()), MIN_MAX)]
    assert set(order[:3]) == {"A", "B", "C"} and set(order[3:]) == {"D", "E"}
    # within the front, B (a loss worse than A's for 0.1 more margin) adds the least volume: it comes last
    assert order[2] == "B"
    # the same five in another order: the same order of the trials
    shuffled = ["E", "B", "D", "C", "A"]
    assert [shuffled[i] for i in pareto_order([vectors[name] for name in shuffled], MIN_MAX)] == order


def test_pareto_order_puts_a_non_finite_vector_last_in_its_rank():
    vectors = [[math.nan, 0.0], [1.0, 5.0], [2.0, 4.0], [None, 9.0]]  # [None, 9] is on the front by its margin
    order = pareto_order(vectors, MIN_MAX)
    assert order.index(3) == 1 and order[0] == 1  # front: [1, 5] then the non-finite [None, 9]
    assert order[-1] == 0  # [nan, 0]: the worst in both
    # neither dominates the other (each is the worst in one objective): one rank, in their given order, even where
    # no vector is finite throughout
    minimize = ["minimize", "minimize"]
    assert pareto_order([[2.0, None], [None, 1.0]], minimize) == [0, 1]
    assert pareto_order([[1.0, 1.0], [50.0, None], [None, 70.0]], minimize) == [0, 1, 2]


def _promote(own, peers, reduction_factor=3):
    return decide_promotion(own, peers, MIN_MAX, rung=0.25, step=4, reduction_factor=reduction_factor)


def test_successive_halving_keeps_the_first_third_in_pareto_order_and_stops_the_rest():
    peers = [[1.0, 5.0], [3.0, 9.0], [2.0, 4.0], [4.0, 3.0], [5.0, 2.0]]  # fronts: {0, 1}, {2}, {3}, {4}
    on_front = _promote([2.0, 8.0], peers)  # joins the front; 6 trials, the first 2 go on
    assert (on_front.kept, on_front.peers) == (2, 5)
    dominated = _promote([2.5, 3.5], peers)  # dominated by [1, 5] and [2, 4]
    assert dominated.prune and dominated.place == 3
    assert dominated.reason == (
        "pruned at rung 0.25 of the schedule (evaluation at step 4): Pareto place 4 of 6 trials that reached this rung "
        "(the first 2 go on)"
    )
    best = _promote([0.5, 10.0], peers)  # dominates everyone
    assert not best.prune and best.place == 0
    # on the front but adding the least volume of the three there (a hair more margin than [1, 5] for a worse
    # loss): third in Pareto order, so stopped when two go on
    squeezed = _promote([1.2, 5.05], peers)
    assert (squeezed.place, squeezed.prune) == (2, True)


def test_successive_halving_keeps_the_first_trials_at_a_rung_only_while_they_lead_it():
    assert not _promote([3.0, 1.0], []).prune  # alone at the rung
    assert _promote([3.0, 1.0], [[2.0, 2.0]]).prune  # two trials, one goes on: the better one
    assert not _promote([1.0, 3.0], [[2.0, 2.0]]).prune  # a trade-off: both on the front, larger contribution
    assert _promote([3.0, 1.0], [[2.0, 2.0], [2.5, 1.5]], reduction_factor=2).prune  # 3 // 2 = 1 goes on
    assert not _promote([1.0, 3.0], [[2.0, 2.0], [2.5, 1.5], [3.0, 0.5]], reduction_factor=2).prune  # 2 of 4


def test_rungs_are_fractions_of_each_trials_schedule_or_absolute_steps():
    assert rung_threshold(0.25, 100) == 25
    assert rung_threshold(0.25, 10) == 3  # rounded up: the rung is never before its share of the schedule
    assert rung_threshold(0.01, 10) == 1  # never step 0, the evaluation before training
    assert rung_threshold(20, 10) == 20  # absolute steps ignore the schedule
    assert rung_step([0, 4, 8, 12], 3) == 4  # the first evaluation at or after the rung
    assert rung_step([0, 4, 8], 4) == 4
    assert rung_step([0, 4, 8], 9) is None  # not reached yet


def _rows(trial_number, split, step, **metrics):
    """Stored points as `CurveStore.points` gives them."""
    return [(trial_number, split, metric, step, value) for metric, value in metrics.items()]


def _eval(trial_number, step, nll, margin):
    return _rows(trial_number, "eval", step, nll_loss=nll, margin=margin)


def _objective(eval_metrics, train_metrics):
    return [eval_metrics["eval_nll_loss"], eval_metrics["eval_margin"]]


def peer_vectors(rows, peers, rung):
    """Each peer's vector at `rung` (vector_at_rung), for the peers that reached it, as a pruning decision sees them."""
    curves = curves_by_trial(rows)
    found = [vector_at_rung(curves[number], rung, planned, objective)
             for number, (planned, objective) in peers.items() if number in curves]
    return [vector for _, vector in filter(None, found)]


def test_peer_vectors_are_read_at_each_peers_own_rung_step():
    rows = [
        # trial 0 plans 8 steps, evaluated every 2: rung 0.5 = step 4
        *_eval(0, 0, 5.0, 0.0), *_eval(0, 2, 4.0, 0.1), *_eval(0, 4, 3.0, 0.2), *_eval(0, 6, 2.0, 0.3),
        # trial 1 plans 20 steps, evaluated every 4: rung 0.5 = step 10 -> its evaluation at step 12
        *_eval(1, 0, 5.0, 0.0), *_eval(1, 8, 3.5, 0.4), *_eval(1, 12, 2.5, 0.6),
        # trial 2 plans 20 steps but is still at step 8: it has not reached the rung
        *_eval(2, 0, 5.0, 0.0), *_eval(2, 8, 1.0, 0.9),
        # trial 3 has the rung's evaluation but without the margin: it cannot be compared
        *_rows(3, "eval", 4, nll_loss=1.0),
        # trial 4 diverged at its rung: NaN was stored as NULL, so it compares as the worst
        *_eval(4, 4, None, 0.5),
    ]
    peers = {number: (planned, _objective) for number, planned in {0: 8, 1: 20, 2: 20, 3: 8, 4: 8, 5: 8}.items()}
    vectors = peer_vectors(rows, peers, 0.5)
    assert vectors[:2] == [[3.0, 0.2], [2.5, 0.6]]
    assert len(vectors) == 3 and math.isnan(vectors[2][0])
    # an absolute rung is the same step for everyone: trial 0 (last evaluated at 6) has not reached step 8
    assert peer_vectors(rows, peers, 8) == [[3.5, 0.4], [1.0, 0.9]]
    # a peer without its planned steps cannot place a fraction rung
    assert peer_vectors(rows, {0: (None, _objective)}, 0.5) == []


def test_training_metrics_at_a_rung_are_the_latest_logged_at_or_before_it():
    rows = [*_rows(0, "train", 2, loss=3.0), *_rows(0, "train", 4, loss=2.0), *_rows(0, "train", 6, loss=1.0)]
    curve = curves_by_trial([*rows, *_eval(0, 4, 3.0, 0.2)])[0]
    assert curve.train_metrics(4) == {"loss": 2.0}
    assert curve.train_metrics(5) == {"loss": 2.0}
    assert curve.train_metrics(1) == {}


# -- the callback, on a stored study of hand-built curves (no training)


def _study_file(write_fast_study, **pruner):
    return write_fast_study(pruner={"name": "dominated", "rungs": [0.5], "min_peers": 2, **pruner} if pruner else None)


def _stored_peers(spec, storage, vectors_at_step_4):
    """COMPLETE trials planned for 8 steps whose evaluation at step 4 gives `vectors_at_step_4`."""
    study = open_study(spec, storage)
    with CurveStore(spec.storage) as curves:
        for nll, margin in vectors_at_step_4:
            trial = study.ask()
            spec.space.suggest(trial)
            store(trial, planned_steps=8)
            trial.set_user_attr("training_config", {"orpo": {"beta": 0.1}})
            # eval_logp_margin = logps/chosen - logps/rejected
            points = [CurvePoint(4, "eval", "nll_loss", nll), CurvePoint(4, "eval", "logps/chosen", margin),
                      CurvePoint(4, "eval", "logps/rejected", 0.0)]
            curves.write(spec.study_name, trial.number, points)
            study.tell(trial, [nll, margin])
    return study


def _evaluate_at(callback, step, nll, margin, max_steps=8):
    args = TrainingArguments(output_dir="unused", report_to=[])
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step = max_steps, 0
    callback.on_train_begin(args, state, control)
    state.global_step = step
    logs = {"eval_nll_loss": nll, "eval_logps/chosen": margin, "eval_logps/rejected": 0.0}
    callback.on_log(args, state, control, logs=logs)
    callback.on_evaluate(args, state, control, metrics=logs)
    return control


def test_a_worker_reads_a_finished_peers_curves_once_and_a_running_peers_at_each_decision(write_fast_study):
    spec = load_study_spec(_study_file(write_fast_study, dominated_fraction=1.0))
    storage = open_storage(spec.storage, heartbeat_interval_s=None)
    study = _stored_peers(spec, storage, [(2.0, 0.5), (2.5, 0.3)])
    running = study.ask()
    spec.space.suggest(running)
    store(running, planned_steps=8)
    running.set_user_attr("training_config", {"orpo": {"beta": 0.1}})
    own = study.ask()
    with CurveStore(spec.storage) as curves:
        peers = PeerRungs(spec, curves)

        def decide_now():  # what this worker's cache gives, and what a fresh read of the whole study gives
            return peers.vectors(study, 0.5, own.number, 0.1), PeerRungs(spec, curves).vectors(study, 0.5, own.number, 0.1)

        cached, fresh = decide_now()
        assert cached == fresh == [[2.0, 0.5], [2.5, 0.3]] and peers.trials_read == [0, 1, running.number]
        curves.write(spec.study_name, running.number, [CurvePoint(4, "eval", "nll_loss", 1.5),
                                                       CurvePoint(4, "eval", "logps/chosen", 0.8),
                                                       CurvePoint(4, "eval", "logps/rejected", 0.0)])
        cached, fresh = decide_now()  # the running peer reached the rung since
        assert cached == fresh == [[2.0, 0.5], [2.5, 0.3], [1.5, 0.8]] and peers.trials_read == [running.number]
        study.tell(running, [1.5, 0.8])
        _stored_peers(spec, storage, [(3.0, 0.9)])  # a new finished peer
        cached, fresh = decide_now()
        assert cached == fresh and len(cached) == 4 and peers.trials_read == [running.number, own.number + 1]
        decide_now()
        assert peers.trials_read == []  # every peer finished and read: nothing more to read


def _eval_points(step, nll, margin, metrics=("nll_loss", "logps/chosen", "logps/rejected")):
    values = {"nll_loss": nll, "logps/chosen": margin, "logps/rejected": 0.0}
    return [CurvePoint(step, "eval", metric, values[metric]) for metric in metrics]


def _peer(study, spec, curves, planned_steps, points, train_points=()):
    trial = study.ask()
    spec.space.suggest(trial)
    if planned_steps is not None:
        store(trial, planned_steps=planned_steps)
        trial.set_user_attr("training_config", {"orpo": {"beta": 0.1}})
    curves.write(spec.study_name, trial.number, [*points, *train_points])
    study.tell(trial, [1.0, 1.0])
    return trial.number


@pytest.mark.parametrize(("steps_selected", "threshold_reads"), [(None, None), (1, None), (None, 0)],
                         ids=["rung-steps", "too-many-steps", "too-many-thresholds"])
def test_a_first_decision_reads_only_each_peers_rung_steps_and_finds_the_vectors_a_full_read_does(
    write_fast_study, monkeypatch, steps_selected, threshold_reads
):
    if steps_selected is not None:  # more distinct rung steps than one read names: every step of those peers
        monkeypatch.setattr(intermediate, "MAX_STEPS_SELECTED", steps_selected)
    if threshold_reads is not None:  # more rung thresholds than aggregates: every evaluation step, placed in Python
        monkeypatch.setattr(intermediate, "MAX_THRESHOLD_READS", threshold_reads)
    spec = load_study_spec(_study_file(write_fast_study, rungs=[0.25, 0.5]))
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    with CurveStore(spec.storage) as curves:
        planned = {
            # 8 steps, evaluated every 2: rung 0.25 is step 2, rung 0.5 step 4
            _peer(study, spec, curves, 8, [p for step in range(0, 9, 2) for p in _eval_points(step, 9 - step, step)]):
                8,
            # 20 steps, evaluated at 0, 8, 12, 16: rung 0.25 (step 5) is its evaluation at 8, rung 0.5 at 12
            _peer(study, spec, curves, 20, [p for step in (0, 8, 12, 16) for p in _eval_points(step, 20 - step, 1)]):
                20,
            # its evaluation at rung 0.5's step has one of the three metrics: no vector there, not the next one's
            _peer(study, spec, curves, 20, [*_eval_points(8, 3.0, 2.0), *_eval_points(12, 2.0, 0, ["logps/rejected"]),
                                            *_eval_points(16, 1.0, 3.0)]): 20,
            # no schedule stored: a fraction rung has no step
            _peer(study, spec, curves, None, _eval_points(4, 1.0, 1.0)): None,
        }
        read = []
        points = curves.points

        def recording_points(*args, **kwargs):
            found = points(*args, **kwargs)
            read.extend(found)
            return found

        curves.points = recording_points
        own = study.ask()
        peers = PeerRungs(spec, curves)
        every_point = curves_by_trial(points(spec.study_name))

        def objective(eval_metrics, train_metrics):
            return spec.objective_values(eval_metrics, train_metrics, 0.1)

        for rung, expected in ((0.25, [[7.0, 2.0], [12.0, 1.0], [3.0, 2.0]]), (0.5, [[5.0, 4.0], [8.0, 1.0]])):
            full = [vector_at_rung(every_point[number], rung, steps, objective) for number, steps in planned.items()]
            assert [vector for _, vector in filter(None, full)] == expected
            assert peers.vectors(study, rung, own.number, 0.1) == expected
        # each peer's points at rung steps, no others
        every_step = {0, 2, 4, 6, 8, 12, 16}
        assert {step for _, _, _, step, _ in read} == ({2, 4, 8, 12} if steps_selected is None else every_step)
        assert peers.trials_read == [number for number, steps in planned.items() if steps is None]  # read again


def test_peers_training_metrics_at_a_rung_are_read_where_an_objective_needs_them(write_fast_study):
    path = write_fast_study(objectives=[{"name": "eval_nll_loss", "direction": "minimize"},
                                        {"name": "train_nll_loss", "direction": "minimize"}],
                            pruner={"name": "dominated", "rungs": [0.5], "min_peers": 2})
    spec = load_study_spec(path)
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    with CurveStore(spec.storage) as curves:
        train = [CurvePoint(step, "train", "nll_loss", 10.0 - step) for step in (1, 3, 5)]
        _peer(study, spec, curves, 8, [*_eval_points(2, 4.0, 0), *_eval_points(4, 3.0, 0)], train)
        own = study.ask()
        # rung 0.5 of 8 steps: the evaluation at step 4, the training loss last logged before it (step 3)
        assert PeerRungs(spec, curves).vectors(study, 0.5, own.number, 0.1) == [[3.0, 7.0]]


def test_a_decision_reads_its_peers_with_the_collector_paused_and_resumes_it(write_fast_study):
    """A first decision's rows would drive the collector through the worker's whole trial cache (bench/pruning_decision.py)."""
    path = write_fast_study(pruner={"name": "dominated", "rungs": [0.5], "min_peers": 2})
    spec = load_study_spec(path)
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    with CurveStore(spec.storage) as curves:
        _peer(study, spec, curves, 8, [*_eval_points(2, 4.0, 1.0), *_eval_points(4, 3.0, 2.0)])
        collector_running = []
        points = curves.points

        def recording_points(*args, **kwargs):
            collector_running.append(gc.isenabled())
            return points(*args, **kwargs)

        curves.points = recording_points
        own = study.ask()
        assert gc.isenabled()
        assert PeerRungs(spec, curves).vectors(study, 0.5, own.number, 0.1) == [[3.0, 2.0]]
        assert collector_running == [False] and gc.isenabled()


@pytest.mark.parametrize(
    ("own", "stops"),
    [((3.0, 0.1), True), ((1.0, 0.1), False)],
    ids=["dominated-by-both", "best-loss"],
)
def test_the_callback_stops_a_dominated_trial_and_stores_its_evaluations_as_it_goes(write_fast_study, own, stops):
    spec = load_study_spec(_study_file(write_fast_study, dominated_fraction=1.0))
    storage = open_storage(spec.storage, heartbeat_interval_s=None)
    study = _stored_peers(spec, storage, [(2.0, 0.5), (2.5, 0.3)])
    trial = study.ask()
    with CurveStore(spec.storage) as curves:
        callback = IntermediateEvaluations(trial, spec, curves, beta=0.1)
        control = _evaluate_at(callback, 4, *own)
        stored = {(row["metric"], row["step"]) for row in curves.read(spec.study_name, trial.number)}
    assert {("nll_loss", 4), ("logps/chosen", 4)} <= stored  # written at the evaluation, before the trial ends
    assert TrialRecord.of(study.trials[trial.number]).planned_steps == 8
    assert control.should_training_stop is stops
    assert (callback.decision is not None) is stops
    if stops:
        assert "dominated by 2 of 2 trials" in callback.decision.reason


@pytest.mark.parametrize(("own", "stops"), [((3.0, 0.1), True), ((1.0, 0.9), False)], ids=["last", "first"])
def test_the_asha_callback_lets_the_first_third_in_pareto_order_go_on(write_fast_study, own, stops):
    spec = load_study_spec(write_fast_study(pruner={"name": "asha", "rungs": [0.5], "reduction_factor": 3}))
    study = _stored_peers(spec, open_storage(spec.storage, heartbeat_interval_s=None), [(2.0, 0.5), (2.5, 0.3)])
    with CurveStore(spec.storage) as curves:
        callback = IntermediateEvaluations(study.ask(), spec, curves, beta=0.1)
        control = _evaluate_at(callback, 4, *own)
    assert control.should_training_stop is stops
    if stops:
        assert callback.decision.prune
        assert "Pareto place 3 of 3 trials that reached this rung (the first 1 go on)" in callback.decision.reason
    else:
        assert callback.decision is None


def test_the_multi_metric_pruner_stops_a_trial_ranked_below_the_median_once_enough_trials_finished(write_fast_study):
    spec = load_study_spec(write_fast_study(pruner={"name": "multi_metric", "rungs": [0.5], "min_peers": 3}))
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    stopped, reasons = [], []
    with CurveStore(spec.storage) as curves:
        # each trial reports through the callback at the rung, then ends; the fourth is dominated by all three
        # before it, the fifth dominates everyone, the sixth is dominated but only by some
        for nll, margin in [(2.0, 0.5), (2.5, 0.3), (1.5, 0.2), (3.0, 0.1), (1.0, 0.9), (2.2, 0.25)]:
            trial = study.ask()
            spec.space.suggest(trial)
            callback = IntermediateEvaluations(trial, spec, curves, beta=0.1)
            control = _evaluate_at(callback, 4, nll, margin)
            stopped.append(bool(control.should_training_stop))
            if callback.decision is not None:
                reasons.append(callback.decision.reason)
            study.tell(trial, None if control.should_training_stop else [nll, margin],
                       state=TrialState.PRUNED if control.should_training_stop else TrialState.COMPLETE)
    assert stopped == [False, False, False, True, False, True]
    assert reasons[0] == (
        "pruned at rung 0.5 of the schedule (evaluation at step 4) by multi_metric_pruner: best Pareto rank so far "
        "worse than the median of the finished trials at this rung"
    )
    reported = study.trials[3].user_attrs["multi_pruner:values"]  # the pruner's own record, at the rung's index
    assert reported == {"0": {"eval_nll_loss": 3.0, "eval_logp_margin": 0.1}}


def test_an_objective_on_training_metrics_compares_each_peers_latest_training_log(write_fast_study):
    spec = load_study_spec(write_fast_study(
        objectives=[{"name": "eval_nll_loss"}, {"name": "train_nll_loss"}],
        pruner={"name": "dominated", "rungs": [4], "min_peers": 2, "dominated_fraction": 1.0},
    ))
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    with CurveStore(spec.storage) as curves:
        for train_nll in (1.0, 1.5):  # both peers: eval NLL 2.0 at step 4, training NLL logged at 2 and 4
            trial = study.ask()
            spec.space.suggest(trial)
            curves.write(spec.study_name, trial.number, [
                CurvePoint(2, "train", "nll_loss", 9.0), CurvePoint(4, "train", "nll_loss", train_nll),
                CurvePoint(6, "train", "nll_loss", 0.1), CurvePoint(4, "eval", "nll_loss", 2.0),
            ])
            study.tell(trial, [2.0, train_nll])
        verdicts = []
        for own_train_nll in (2.0, 1.2):  # worse than both peers' step-4 training NLL; better than one of them
            callback = IntermediateEvaluations(study.ask(), spec, curves, beta=0.1)
            args = TrainingArguments(output_dir="unused", report_to=[])
            state, control = TrainerState(), TrainerControl()
            state.max_steps = 8
            callback.on_train_begin(args, state, control)
            state.global_step = 4
            callback.on_log(args, state, control, logs={"nll_loss": own_train_nll, "loss": 3.0})
            callback.on_log(args, state, control, logs={"eval_nll_loss": 2.5})
            callback.on_evaluate(args, state, control, metrics={"eval_nll_loss": 2.5})
            verdicts.append((control.should_training_stop, callback.decision and callback.decision.dominated_by))
    assert verdicts == [(True, 2), (False, None)]


def test_no_rung_no_stop_the_callback_only_stores_points_when_pruning_is_off(write_fast_study):
    spec = load_study_spec(write_fast_study())
    assert not spec.pruner.enabled
    study = _stored_peers(spec, open_storage(spec.storage, heartbeat_interval_s=None), [(2.0, 0.5), (2.5, 0.3)])
    trial = study.ask()
    with CurveStore(spec.storage) as curves:
        callback = IntermediateEvaluations(trial, spec, curves, beta=0.1)
        control = _evaluate_at(callback, 4, 9.0, -1.0)
        assert curves.read(spec.study_name, trial.number)
    assert not control.should_training_stop and callback.decision is None


def test_a_rung_at_the_last_step_prunes_nothing(write_fast_study):
    spec = load_study_spec(_study_file(write_fast_study, dominated_fraction=0.5))
    study = _stored_peers(spec, open_storage(spec.storage, heartbeat_interval_s=None), [(2.0, 0.5), (2.5, 0.3)])
    with CurveStore(spec.storage) as curves:
        callback = IntermediateEvaluations(study.ask(), spec, curves, beta=0.1)
        control = _evaluate_at(callback, 4, 9.0, -1.0, max_steps=4)  # rung 0.5 of 4 steps = 2 -> checked at 4
    assert not control.should_training_stop and callback.decision is None


def test_pruned_trials_count_toward_the_target_and_show_in_the_progress_line(write_fast_study):
    spec = load_study_spec(write_fast_study())
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED):
        trial = study.ask()
        spec.space.suggest(trial)
        study.tell(trial, [1.0, 0.0] if state == TrialState.COMPLETE else None, state=state)
    assert trials_toward_target(study) == 3
    line = ProgressLine(study, spec.n_trials, stream=io.StringIO()).render()
    assert line.startswith("trials 3/3 · 0 running · 0 failed · 2 pruned · Pareto front 1 · ")


# -- a real tiny sweep


def _sweep_learning_rates(study_file):
    """A real sweep whose first trials learn at 1e-2 and 5e-3, then one barely moves (1e-4): its stored trials."""
    spec = load_study_spec(study_file)
    study = open_study(spec, open_storage(spec.storage, heartbeat_interval_s=None))
    for learning_rate in (1e-2, 5e-3, 1e-4):
        study.enqueue_trial({"learning_rate": learning_rate, "per_device_train_batch_size": 8, "weight_decay": 0.0})
    run_worker(spec, show_progress=False)
    return spec, optuna.load_study(study_name=spec.study_name, storage=spec.storage).get_trials()


@pytest.mark.integration
def test_a_real_sweep_prunes_dominated_trials_and_the_sampler_goes_on(write_fast_study):
    # Two beta-free objectives that move together on the tiny task, so that a barely learning trial is dominated.
    study_file = write_fast_study(
        n_trials=5,
        training={"orpo.max_steps": 8, "orpo.eval_steps": 2, "orpo.logging_steps": 2},
        objectives=[{"name": "eval_nll_loss"}, {"name": "eval_loss_unit_beta"}],
        sampler={"name": "tpe", "seed": 0, "options": {"n_startup_trials": 2}},
        pruner={"name": "dominated", "rungs": [0.25, 0.5], "min_peers": 2, "dominated_fraction": 0.5},
    )
    spec, trials = _sweep_learning_rates(study_file)
    assert len(trials) == 5
    assert [t.state for t in trials[:2]] == [TrialState.COMPLETE] * 2  # fewer than min_peers before them
    slow = trials[2]
    assert slow.state == TrialState.PRUNED and slow.values is None
    assert TrialRecord.of(slow).pruned_at_step == 2  # rung 0.25 of 8 steps
    assert TrialRecord.of(slow).pruned_reason.startswith("pruned at rung 0.25 of the schedule (evaluation at step 2)")
    assert "dominated by 2 of 2 trials" in TrialRecord.of(slow).pruned_reason
    assert slow.user_attrs["global_steps"] == 2 and TrialRecord.of(slow).planned_steps == 8
    with CurveStore(spec.storage) as curves:
        steps = {(row["split"], row["step"]) for row in curves.read(spec.study_name, slow.number)}
    assert steps == {("eval", 0), ("eval", 2), ("train", 2)}  # its curve up to where it stopped

    # TPE proposed the last two with a PRUNED multi-objective trial in its history; each ran or was pruned
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials[3:])
    assert all("learning_rate" in t.params for t in trials[3:])
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert TrialRecord.of(trial).planned_steps == trial.user_attrs["global_steps"] == 8


@pytest.mark.integration
@pytest.mark.parametrize(
    ("pruner", "second", "reason"),
    [
        # halving: the second trial, behind the first at the rung, is stopped too (one of two goes on)
        ({"name": "asha", "rungs": [0.25, 0.5], "reduction_factor": 2}, TrialState.PRUNED, "Pareto place 3 of 3"),
        # the median rule waits for two finished trials
        ({"name": "multi_metric", "rungs": [0.25, 0.5], "min_peers": 2}, TrialState.COMPLETE,
         "by multi_metric_pruner: best Pareto rank"),
    ],
    ids=["asha", "multi_metric"],
)
def test_a_real_sweep_with_each_other_pruner_stops_the_trial_that_barely_learns(
    write_fast_study, pruner, second, reason
):
    study_file = write_fast_study(
        n_trials=3,
        training={"orpo.max_steps": 8, "orpo.eval_steps": 2, "orpo.logging_steps": 2},
        objectives=[{"name": "eval_nll_loss"}, {"name": "eval_loss_unit_beta"}],
        pruner=pruner,
    )
    spec, trials = _sweep_learning_rates(study_file)
    assert [t.state for t in trials] == [TrialState.COMPLETE, second, TrialState.PRUNED]
    slow = trials[2]
    assert TrialRecord.of(slow).pruned_at_step == 2 and slow.user_attrs["global_steps"] == 2
    assert TrialRecord.of(slow).pruned_reason.startswith("pruned at rung 0.25 of the schedule (evaluation at step 2)")
    assert reason in TrialRecord.of(slow).pruned_reason
