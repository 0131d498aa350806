"""The analysis on a stored study of known structure (tests/_known_study.py): the gap rises with the learning rate,
falls with beta and ignores dropout; the maximised objective depends on dropout only."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from scipy import stats
from optuna.distributions import FloatDistribution

from _known_study import (
    BALANCED_TRIAL,
    FAILED_TRIAL,
    FAILURE_REASON,
    LR_RANGE,
    OVERFIT_TRIAL,
    PRUNED_TRIAL,
    RISE_TRIAL,
    UNDERFIT_TRIAL,
    position,
    write_study_file,
)
from sweeper.analysis import (
    BALANCED,
    CONTRADICTED,
    FANOVA,
    GAP,
    INCONCLUSIVE,
    OVERFIT,
    PED_ANOVA,
    SUPPORTED,
    TRAIN_LOSS,
    UNDERFIT,
    analyze_study,
    spearman_with_ci,
)
from sweeper.analysis import _analyze
from sweeper.analysis._correlation import spearman_table
from sweeper.analysis._importance import importances_for
from sweeper.cli import main
from sweeper.config import ConfigError
from sweeper.storage import Storage


@pytest.fixture
def analysis(known_analysis):
    return known_analysis


def _correlation(analysis, parameter, target):
    return next(c for c in analysis.correlations if c.parameter == parameter and c.target == target)


def test_fit_rows_measure_losses_gap_and_rise(analysis):
    by_number = {trial.number: trial for trial in analysis.trials}
    fit = by_number[OVERFIT_TRIAL].fit
    # u = 1, b = 0: training loss 2.0, gap 0.7 (noise 0.01), built in the beta-free form nll - log_odds_ratio
    assert fit.train_loss == pytest.approx(2.0, abs=0.05)
    assert fit.generalization_gap == pytest.approx(0.7, abs=0.05)
    assert fit.eval_loss == pytest.approx(fit.train_loss + fit.generalization_gap)
    assert fit.eval_nll_loss == pytest.approx(fit.eval_loss - 0.3)  # log_odds_ratio is -0.3 throughout
    assert fit.eval_start_loss == pytest.approx(4.5)
    assert fit.eval_rise_after_min == pytest.approx(0.3, abs=1e-9)
    assert fit.eval_min_step == 32
    assert by_number[BALANCED_TRIAL].fit.eval_rise_after_min == pytest.approx(0.0)


def test_fit_labels_follow_the_rule(analysis):
    by_number = {trial.number: trial for trial in analysis.trials}
    assert by_number[UNDERFIT_TRIAL].fit.label == UNDERFIT
    assert by_number[BALANCED_TRIAL].fit.label == BALANCED
    assert by_number[OVERFIT_TRIAL].fit.label == OVERFIT
    # a small gap, but validation gave back much of its gain after its minimum: overfit by the rise clause
    rise = by_number[RISE_TRIAL].fit
    assert rise.gap_ratio < analysis.fit_rule.overfit_gap_ratio
    assert rise.label == OVERFIT and "rose" in rise.reason
    lr_positions = {t.number: position(t.params["learning_rate"], LR_RANGE) for t in analysis.completed}
    for trial in analysis.completed:
        if lr_positions[trial.number] < 0.25:
            assert trial.fit.label == UNDERFIT, trial
        if lr_positions[trial.number] > 0.9:
            assert trial.fit.label == OVERFIT, trial
    assert by_number[FAILED_TRIAL].fit is None and by_number[FAILED_TRIAL].failure_reason == FAILURE_REASON
    assert by_number[PRUNED_TRIAL].state == "PRUNED" and by_number[PRUNED_TRIAL].pruned_step == 8


def test_directions_of_effects(analysis):
    on_gap = _correlation(analysis, "learning_rate", GAP)
    assert on_gap.direction == "increases" and on_gap.rho > 0.8 and on_gap.strength == "strong"
    assert on_gap.ci_low <= on_gap.rho <= on_gap.ci_high
    assert on_gap.high_minus_low > 0.3  # about 0.6 x (the top third's u - the bottom third's)
    assert _correlation(analysis, "learning_rate", TRAIN_LOSS).direction == "decreases"
    assert _correlation(analysis, "beta", GAP).direction == "decreases"
    for parameter in ("lora_dropout", "weight_decay", "effective_batch_size"):
        assert _correlation(analysis, parameter, GAP).direction == "unclear", parameter
    assert _correlation(analysis, "lora_dropout", "eval_logp_margin").direction == "increases"


def test_claim_verdicts(analysis):
    verdicts = {claim.hyperparameter: claim for claim in analysis.claims}
    assert verdicts["learning rate"].verdict == SUPPORTED  # high learning rate: larger gap, lower training loss
    assert verdicts["beta"].verdict == CONTRADICTED  # the notes say high beta overfits; here it narrows the gap
    assert verdicts["LoRA dropout"].verdict == INCONCLUSIVE
    assert verdicts["weight decay"].verdict == INCONCLUSIVE
    assert verdicts["batch size"].parameter == "effective_batch_size"
    assert verdicts["learning rate"].gap_ci[0] > 0 and verdicts["beta"].gap_ci[1] < 0
    assert verdicts["learning rate"].gap_seed_sd is None  # no replicates in this study


def test_importance_per_objective_and_gap(analysis):
    importances = {(i.target, i.evaluator): i for i in analysis.importances}
    gap = importances[(GAP, FANOVA)]
    assert gap.error is None and max(gap.values, key=gap.values.get) == "learning_rate"
    assert gap.values["learning_rate"] > 5 * gap.values["lora_dropout"]
    margin = importances[("eval_logp_margin", FANOVA)]
    assert max(margin.values, key=margin.values.get) == "lora_dropout"
    ped = importances[("eval_logp_margin", PED_ANOVA)]
    assert ped.negated_for_maximize and max(ped.values, key=ped.values.get) == "lora_dropout"
    assert not importances[("eval_nll_loss", PED_ANOVA)].negated_for_maximize
    assert sum(gap.values.values()) == pytest.approx(1.0)


def _two_parameter_trials(n: int, value_of, seed: int = 0):
    """`n` frozen trials of parameters a, b ~ U(0, 1) and their target values `value_of(a, b, rng)` by number."""
    rng = np.random.default_rng(seed)
    distributions = {"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)}
    trials, values = [], {}
    for number in range(n):
        a, b = rng.uniform(size=2)
        trial = optuna.trial.create_trial(params={"a": a, "b": b}, distributions=distributions, value=0.0)
        trial.number = number
        trials.append(trial)
        values[number] = value_of(a, b, rng)
    return trials, values


def test_ped_anova_importance_explains_the_best_trials_of_a_maximised_objective():
    """y = 5 [b > 0.8] - 5 [a > 0.8], maximised: b decides the best trials, a the worst. Passing the maximised
    values unnegated would explain the worst trials (a), which is the mistake this guards against."""
    trials, values = _two_parameter_trials(200, lambda a, b, rng: 5.0 * (b > 0.8) - 5.0 * (a > 0.8) + rng.normal(0, 0.01))
    maximised = importances_for(trials, values, "y", maximize=True, params=["a", "b"], evaluators=[PED_ANOVA])[0]
    assert maximised.values["b"] > 2 * maximised.values["a"]
    minimised = importances_for(trials, values, "y", maximize=False, params=["a", "b"], evaluators=[PED_ANOVA])[0]
    assert minimised.values["a"] > 2 * minimised.values["b"]  # what the unnegated target would have said
    fanova_max, fanova_min = (
        importances_for(trials, {k: sign * v for k, v in values.items()}, "y", maximize=m, params=["a", "b"],
                        evaluators=[FANOVA])[0]
        for sign, m in ((1, True), (-1, False))
    )
    assert fanova_max.values == pytest.approx(fanova_min.values)  # variance-based: sign-blind


def test_pareto_front_and_hypervolume(analysis):
    completed = analysis.completed
    assert analysis.pareto_numbers and set(analysis.pareto_numbers) <= {t.number for t in completed}
    for number in analysis.pareto_numbers:  # nobody dominates a Pareto trial
        mine = next(t for t in completed if t.number == number).values
        for other in completed:
            theirs = other.values
            at_least_as_good = (theirs["eval_nll_loss"] <= mine["eval_nll_loss"]
                                and theirs["eval_logp_margin"] >= mine["eval_logp_margin"])
            assert not (at_least_as_good and theirs != mine)
    history = analysis.hypervolume
    assert len(history.values) == len(completed)
    assert all(later >= earlier for earlier, later in zip(history.values, history.values[1:]))
    assert history.values[-1] > 0
    assert {c.trial_number for c in analysis.pareto_curves} == set(analysis.pareto_numbers)


def test_fits_read_the_curves_a_chunk_of_trials_at_a_time(known_study, known_analysis, monkeypatch):
    # a large study's loss curves are read and measured a chunk of trials at a time, the Pareto trials' kept for
    # their figures: the same fits and Pareto curves as the session's analysis, which read them in one chunk
    name, url = known_study
    monkeypatch.setattr(_analyze, "FIT_CHUNK", 7)
    reads = []
    with Storage.for_reading(url) as storage:
        study = optuna.load_study(study_name=name, storage=storage.optuna)
        reader = _analyze._curve_reader(storage, name)

        def counted(numbers):
            reads.append(len(numbers))
            return reader(numbers)

        rows, kept = _analyze._trial_rows(
            study.get_trials(deepcopy=False), counted, study.metric_names, keep=known_analysis.pareto_numbers
        )
    assert len(reads) > 1 and max(reads) <= 7
    measured = lambda fit: fit and (fit.generalization_gap, fit.eval_min_step, fit.eval_rise_after_min)  # noqa: E731
    assert [measured(row.fit) for row in rows] == [measured(row.fit) for row in known_analysis.trials]
    assert sorted(kept) == known_analysis.pareto_numbers
    assert _analyze._pareto_curves(known_analysis.pareto_numbers, kept) == known_analysis.pareto_curves


def test_the_analysis_reads_its_trials_by_columns_not_through_optunas_trial_objects(known_study, monkeypatch):
    """Optuna's get_trials builds ORM objects for every attribute row: at 10,000 trials of a real trial's size that
    was 1.4 GB of an analysis (docs/scaling.md)."""
    stored = len(optuna.load_study(study_name=known_study[0], storage=known_study[1]).trials)

    def refuse(*args, **kwargs):
        raise AssertionError("the analysis read the trials through Optuna")

    monkeypatch.setattr(optuna.Study, "get_trials", refuse)
    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_trials", refuse)
    assert len(analyze_study(*known_study, trials_only=True).trials) == stored


def test_a_trial_pruned_by_optunas_own_pruner_shows_its_last_reported_step(tmp_path):
    """The analysis reads trials by columns, without intermediate values; a trial pruned by Optuna itself (a
    single-objective study: no `pruned_at_step` stored) is read whole for its step."""
    url = f"sqlite:///{tmp_path / 'single.db'}"
    study = optuna.create_study(study_name="single", storage=url)
    study.set_metric_names(["eval_nll_loss"])
    lr = FloatDistribution(1e-5, 1e-1, log=True)
    study.add_trial(optuna.trial.create_trial(params={"lr": 1e-3}, distributions={"lr": lr}, value=2.0))
    trial = study.ask({"lr": lr})
    for step in (3, 7):
        trial.report(2.5, step)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    rows = {row.number: row for row in analyze_study("single", url, trials_only=True).trials}
    assert rows[1].state == "PRUNED" and rows[1].pruned_step == 7
    assert rows[0].pruned_step is None


def test_spearman_bootstrap_interval():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=40)
    rho, low, high = spearman_with_ci(x, x + rng.normal(0, 0.05, 40))
    assert rho > 0.9 and low > 0.8 and high <= 1.0
    # independent data: the 95% interval holds the true rho = 0 in about 95% of samples
    covered = []
    for sample in range(200):
        _, low, high = spearman_with_ci(rng.uniform(size=30), rng.uniform(size=30), n_bootstrap=500, seed=sample)
        covered.append(low < 0 < high)
    assert 0.88 <= np.mean(covered) <= 0.995
    assert spearman_with_ci([1, 2, 3], [1, 2, 3]) == (None, None, None)  # too few trials
    assert spearman_with_ci([1, 1, 1, 1], [1, 2, 3, 4]) == (None, None, None)  # constant parameter


def test_spearman_resamples_ranked_by_counts_equal_resamples_ranked_afresh():
    # the bootstrap ranks a resample from how often it drew each trial instead of sorting it: the same rho per
    # resample (ties averaged), so the same interval as ranking each resample with scipy, for the same draws
    rng = np.random.default_rng(4)
    for n, tied in ((6, False), (50, True), (400, False), (400, True)):
        x = rng.choice([4.0, 8.0, 16.0], n) if tied else rng.normal(size=n)
        y = rng.integers(0, 5, n).astype(float) if tied else x + rng.normal(size=n)
        draws = np.random.default_rng(7)
        rhos = []
        for picks in draws.integers(0, n, size=(300, n)):  # one stream, however the bootstrap chunks it
            a, b = x[picks], y[picks]
            rhos.append(np.nan if np.ptp(a) == 0 or np.ptp(b) == 0 else stats.spearmanr(a, b).statistic)
        expected = np.nanpercentile(rhos, [2.5, 97.5])
        rho, low, high = spearman_with_ci(x, y, n_bootstrap=300, seed=7)
        assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert [low, high] == pytest.approx(expected, abs=1e-12)
    # pairs computed together get what each gets alone
    columns = {"a": rng.normal(size=60), "b": rng.choice([1.0, 2.0], 60), "constant": np.ones(60)}
    targets = {"t": columns["a"] + rng.normal(size=60), "u": rng.normal(size=60)}
    table = spearman_table(columns, targets, n_bootstrap=200, seed=2)
    for (column, target), found in table.items():
        assert found == spearman_with_ci(columns[column], targets[target], n_bootstrap=200, seed=2)
    assert table[("constant", "t")] == (None, None, None)


def test_the_bootstrap_table_is_the_same_whatever_its_chunk_of_resamples(monkeypatch):
    from sweeper.analysis import _correlation

    assert _correlation.resamples_per_chunk(10_000) == 12 and _correlation.resamples_per_chunk(20) == 64
    rng = np.random.default_rng(9)
    columns = {"a": rng.normal(size=301), "b": rng.choice([1.0, 2.0, 4.0], 301)}
    targets = {"t": columns["a"] + rng.normal(size=301)}
    tables = []
    for draws in (1, 3_000, 10_000_000):  # chunks of 8, 9 and 64 resamples of 301 trials
        monkeypatch.setattr(_correlation, "CHUNK_DRAWS", draws)
        tables.append(spearman_table(columns, targets, n_bootstrap=150, seed=4))
    assert tables[0] == tables[1] == tables[2]


@pytest.mark.integration
def test_analyze_command_prints_json(known_study, capsys, tmp_path):
    study_name, url = known_study
    study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
    assert main(["analyze", str(study_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["study_name"] == study_name and data["loss_form"] == "loss_unit_beta"
    assert {row["verdict"] for row in data["claims"]} == {SUPPORTED, CONTRADICTED, INCONCLUSIVE}
    assert len(data["trials"]) == PRUNED_TRIAL + 1
    assert main(["analyze", str(study_file)]) == 0  # the tables
    printed = capsys.readouterr().out
    assert "supported" in printed and "contradicted" in printed and "overfit" in printed


def test_unknown_study_is_a_clear_error(known_study):
    _, url = known_study
    with pytest.raises(ConfigError, match="no study 'missing'.*known-structure"):
        analyze_study("missing", url)


@pytest.mark.postgres
def test_the_same_analysis_from_postgresql(postgres_url, unique_name, analysis):
    from _known_study import build_known_study

    from sweeper.storage import CurveStore

    build_known_study(postgres_url, unique_name)
    try:
        shared = analyze_study(unique_name, postgres_url)
    finally:
        optuna.delete_study(study_name=unique_name, storage=postgres_url)
        with CurveStore(postgres_url) as curves:
            curves.delete_study(unique_name)
    assert shared.pareto_numbers == analysis.pareto_numbers
    assert [t.fit.label for t in shared.completed] == [t.fit.label for t in analysis.completed]
    assert [c.verdict for c in shared.claims] == [c.verdict for c in analysis.claims]
    assert shared.hypervolume.values == pytest.approx(analysis.hypervolume.values)


@pytest.mark.parametrize("evaluator", [FANOVA, PED_ANOVA])
def test_an_importance_needs_one_trial_more_than_the_searched_parameters(evaluator):
    """Below that, a parameter that lines up with the target by chance ranks as high as the one that sets it
    (bench/importance_minimum.py): the analysis says what it lacks instead of printing shares."""
    names = [f"p{index}" for index in range(5)]
    distributions = {name: FloatDistribution(0, 1) for name in names}
    rng = np.random.default_rng(0)
    trials = []
    for number in range(6):
        trial = optuna.trial.create_trial(params={n: rng.uniform() for n in names}, distributions=distributions, value=0)
        trial.number = number
        trials.append(trial)
    values = {trial.number: trial.params["p0"] for trial in trials}
    (too_few,) = importances_for(trials[:5], values, "y", maximize=False, params=names, evaluators=[evaluator])
    assert too_few.values == {}
    assert too_few.error == "needs 6 completed trials (one more than the 5 searched parameters), has 5"
    (enough,) = importances_for(trials, values, "y", maximize=False, params=names, evaluators=[evaluator])
    assert enough.error is None and sum(enough.values.values()) == pytest.approx(1.0)


def test_fanova_on_a_large_study_uses_a_random_sample_that_still_ranks_the_planted_parameter(monkeypatch):
    from sweeper.analysis import _importance

    monkeypatch.setattr(_importance, "MAX_FANOVA_TRIALS", 60)
    trials, values = _two_parameter_trials(150, lambda a, b, rng: 3.0 * a + rng.normal(0, 0.05), seed=1)
    (fanova,) = importances_for(trials, values, "y", maximize=False, params=["a", "b"], evaluators=[FANOVA])
    assert fanova.n_trials == 60 and fanova.values["a"] > 0.9


def test_a_study_with_more_labelled_trials_than_the_cap_advises_the_pareto_trials_first(known_study, monkeypatch):
    from sweeper.analysis import _analyze

    monkeypatch.setattr(_analyze, "MAX_ADVISED_TRIALS", 5)
    analysis = analyze_study(*known_study)
    labelled_pareto = {t.number for t in analysis.pareto_trials if t.fit and t.fit.label in ("overfit", "underfit")}
    advised = {item.trial for item in analysis.advice}
    assert len(advised) <= 5 and labelled_pareto <= advised
    assert any(note.startswith(f"advice for {len(advised)} of the ") for note in analysis.notes)
