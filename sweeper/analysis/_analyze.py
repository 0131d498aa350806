"""`analyze_study`: read a study from storage (Optuna's tables and the curves table) and return plain data."""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from ..config import ConfigError
from ..storage import (
    RETRIED_FROM,
    Storage,
    TrialRecord,
    call_with_retries,
    full_trial,
    pareto_front,
    read_trials,
    replicates_study_name,
    rerun_map,
    stored_failure_reason,
)
from ._advice import advise
from ._claims import judge_claims, judge_side
from ._correlation import N_BOOTSTRAP, direction_of, high_minus_low, spearman_table, strength_of
from ._data import (
    EFFECTIVE_BATCH_SIZE,
    Advice,
    GAP,
    LOSS_FORM,
    OVERFIT,
    TRAIN_LOSS,
    UNDERFIT,
    Correlation,
    ClaimVerdict,
    CurveSeries,
    FitRule,
    ObjectiveInfo,
    ParameterInfo,
    StudyAnalysis,
    TrialRow,
    pareto_then_latest,
)
from ._fit import LOSS_METRICS, best_improvement, label_fit, loss_series, measure_fit
from ._importance import MAX_FANOVA_TRIALS, importances_for
from ._pareto import hypervolume_history
from ._seed_spread import metric_values, seed_spread
from ._interactions import PairInteraction
from ._shapes import OPTIMUM_INSIDE, EffectShape, ParameterAxis, SurrogateFits, shapes_and_interactions


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    # the importance evaluators build in-memory studies, each announced at INFO level
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def load_stored_study(study_name: str, storage: Storage) -> optuna.Study:
    """The stored study, or a `ConfigError` naming the studies that storage does hold."""
    try:
        return optuna.load_study(study_name=study_name, storage=storage.optuna)
    except KeyError:
        known = ", ".join(sorted(storage.study_names())) or "none"
        raise ConfigError(
            f"no study {study_name!r} in {storage.redacted} (studies there: {known}); run `sweeper sweep` first"
        ) from None


def analyze_study(
    study_name: str,
    storage: Storage | str,
    rule: FitRule = FitRule(),
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    trials_only: bool = False,
) -> StudyAnalysis:
    """Everything `sweeper analyze`, the report and the export show, computed from storage alone. `storage`: the
    command's (see `Storage`), or a storage URL, opened for reading here and closed after. `trials_only`: the
    trials, their fit, the Pareto front and the seed spread, without the importances, correlations, effect shapes,
    interactions, advice and claims (what `sweeper export` needs: those are most of an analysis's time)."""
    if isinstance(storage, str):
        with Storage.for_reading(storage) as opened:
            return analyze_study(study_name, opened, rule, n_bootstrap, seed, trials_only)
    with _quiet_optuna():
        study = load_stored_study(study_name, storage)
        directions = [direction.name.lower() for direction in study.directions]
        names = study.metric_names or [f"value_{i}" for i in range(len(directions))]
        objectives = [ObjectiveInfo(name, direction) for name, direction in zip(names, directions, strict=True)]
        frozen = _read_trials(study, storage)
        pareto_numbers = sorted(t.number for t in pareto_front(study, frozen))
        rows, pareto_curve_rows = _trial_rows(frozen, _curve_reader(storage, study_name), names, keep=pareto_numbers)
        best_gain = best_improvement([row.fit for row in rows if row.fit])
        for row in rows:
            if row.fit is not None:
                row.fit = label_fit(row.fit, best_gain, rule)

        complete = [t for t in frozen if t.state == TrialState.COMPLETE]
        on_front = set(pareto_numbers)
        for row in rows:
            row.pareto = row.number in on_front
        spread = _seed_spread(study_name, storage, rows, names, best_gain, rule)

        parameters = _parameters(complete)
        completed_rows = [row for row in rows if row.state == "COMPLETE"]
        targets = _targets(completed_rows, names)
        analysis = StudyAnalysis(
            study_name=study_name,
            storage=storage.redacted,
            objectives=objectives,
            parameters=parameters,
            fit_rule=rule,
            loss_form=LOSS_FORM,
            trials=rows,
            pareto_numbers=pareto_numbers,
            hypervolume=hypervolume_history(
                [t.number for t in complete], [list(t.values) for t in complete], directions
            ),
            pareto_curves=_pareto_curves(pareto_numbers, pareto_curve_rows),
            importances=[],
            correlations=[],
            claims=[],
            seed_spread=spread,
        )
        if trials_only:
            analysis.notes.append("trials only: no importances, effects, advice or claims")
            return analysis
        searched = [p.name for p in parameters if all(p.name in t.params for t in complete)]
        for target, values in targets.items():
            if target == TRAIN_LOSS:
                continue  # importances are reported for the objectives and the gap
            maximize = target in names and directions[names.index(target)] == "maximize"
            analysis.importances += importances_for(complete, values, target, maximize, searched, seed=seed)

        correlations = _correlations(completed_rows, parameters, targets, spread.pooled_sd, n_bootstrap, seed)
        fits = SurrogateFits()  # a target's surrogate serves its effect shapes and the advice
        with _one_blas_thread():
            effects, interactions = _effect_shapes(
                completed_rows, parameters, targets, names, directions, spread.pooled_sd, seed, fits
            )
            advice = _advice(completed_rows, parameters, targets, names, directions, seed, fits)
        varied = {c.parameter for c in correlations if _varies(completed_rows, c.parameter)}
        claims = judge_claims({(c.parameter, c.target): c for c in correlations}, varied, spread.pooled_sd.get(GAP))
        _judge_each_side(claims, effects, completed_rows, parameters, targets, spread.pooled_sd, n_bootstrap, seed)

    analysis.correlations, analysis.claims = correlations, claims
    analysis.effects, analysis.interactions, analysis.advice = effects, interactions, advice
    notes = analysis.notes
    if len(completed_rows) < 4:
        notes.append(f"{len(completed_rows)} completed trial(s): correlations need at least 4, importances 3")
    notes += _mixed_inputs_notes(complete)
    labelled = sum(1 for row in completed_rows if row.fit and row.fit.label in (OVERFIT, UNDERFIT))
    if labelled > MAX_ADVISED_TRIALS:
        notes.append(f"advice for {len(advice)} of the {labelled} overfit or underfit trials: the Pareto trials first, "
                     "then the latest")
    if len(complete) > MAX_FANOVA_TRIALS:
        notes.append(f"fANOVA importances from a random {MAX_FANOVA_TRIALS} of the {len(complete)} completed trials")
    if not spread.groups:
        notes.append(
            "no replicates: seed-to-seed spread unknown; `sweeper replicate STUDY --top K --seeds S` measures it"
        )
    return analysis


def _read_trials(study: optuna.Study, storage: Storage) -> list[FrozenTrial]:
    """Every trial with every user attribute, read by columns (Optuna's own read builds ORM objects: at 10,000 trials
    of a real trial's size that is most of an analysis's memory). A pruned trial without a stored step is read whole:
    its step is its last intermediate value (a study pruned by Optuna's own pruners)."""
    trials = call_with_retries(
        storage.url, f"reading the trials of {study.study_name}",
        lambda: read_trials(study, system_attrs=(RETRIED_FROM,), every_user_attr=True),
    )
    return [
        full_trial(study, trial) if trial.state == TrialState.PRUNED and "pruned_at_step" not in trial.user_attrs
        else trial
        for trial in trials
    ]


def _pruned_step(trial: FrozenTrial, record: TrialRecord) -> int | None:
    if trial.state != TrialState.PRUNED:
        return None
    return record.pruned_at_step if record.pruned_at_step is not None else trial.last_step


def _mixed_inputs_notes(complete: Sequence[FrozenTrial]) -> list[str]:
    """A study resumed on changed data or inputs (allowed with --allow-changed-inputs) mixes experiments: say so,
    naming which trials ran on which version."""
    notes = []
    records = [(trial.number, TrialRecord.of(trial)) for trial in complete]
    for version_of, what in ((attrgetter("dataset_fingerprint"), "data"), (attrgetter("study_inputs"), "study inputs")):
        groups: dict[str, list[int]] = defaultdict(list)
        for number, record in records:
            if version := version_of(record):
                groups[version].append(number)
        if len(groups) > 1:
            listed = "; ".join(
                f"{version}: trials {', '.join(map(str, numbers[:8]))}{', ...' if len(numbers) > 8 else ''}"
                for version, numbers in groups.items()
            )
            notes.append(
                f"mixed {what}: completed trials ran on {len(groups)} versions ({listed}); their effects and claims "
                "mix experiments. Compare within one version, or sweep the new version under a new study_name"
            )
    return notes


def _by_trial(rows: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    grouped: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["trial_number"]].append(row)
    return grouped


def _config_value(config: Mapping[str, Any] | None, section: str, key: str) -> Any:
    if not isinstance(config, Mapping):
        return None
    part = config.get(section) if section else config
    return part.get(key) if isinstance(part, Mapping) else None


CurveReader = Callable[[Sequence[int]], Mapping[int, list[Mapping[str, Any]]]]
# Trials whose loss curves are read and measured at once: a study of thousands of trials holds hundreds of thousands
# of loss points, and only one chunk's are held at a time (the Pareto trials' are kept for their figures).
FIT_CHUNK = 1000


def _curve_reader(storage: Storage, study_name: str) -> CurveReader:
    """The loss curves (the metrics the fit reads) of the given trials, by trial."""
    return lambda numbers: _by_trial(storage.curves.read(study_name, metrics=LOSS_METRICS, trial_numbers=numbers))


def _trial_rows(
    trials: Sequence[FrozenTrial], read_curves: CurveReader, names: Sequence[str], keep: Collection[int] = ()
) -> tuple[list[TrialRow], dict[int, list[Mapping[str, Any]]]]:
    """A row per trial, and the curve rows of the trials in `keep`."""
    rows: list[TrialRow] = []
    kept: dict[int, list[Mapping[str, Any]]] = {}
    reruns = rerun_map(list(trials))
    for start in range(0, len(trials), FIT_CHUNK):
        chunk = trials[start:start + FIT_CHUNK]
        complete = [t.number for t in chunk if t.state == TrialState.COMPLETE]
        curve_rows = read_curves(complete) if complete else {}
        rows += _chunk_rows(chunk, curve_rows, names, reruns)
        kept.update({number: curve_rows[number] for number in keep if number in curve_rows})
    return rows, kept


def _chunk_rows(
    trials: Sequence[FrozenTrial],
    curve_rows: Mapping[int, list[Mapping[str, Any]]],
    names: Sequence[str],
    reruns: Mapping[int, int],
) -> list[TrialRow]:
    rows = []
    for trial in trials:
        record = TrialRecord.of(trial)
        config = record.training_config
        beta = trial.params.get("beta", _config_value(config, "orpo", "beta"))
        effective = record.effective_batch_size
        if effective is None and isinstance(config, Mapping):
            batch = _config_value(config, "orpo", "per_device_train_batch_size")
            accumulation = _config_value(config, "orpo", "gradient_accumulation_steps")
            effective = batch * accumulation if batch and accumulation else None
        complete = trial.state == TrialState.COMPLETE
        rows.append(
            TrialRow(
                number=trial.number,
                state=trial.state.name,
                values=dict(zip(names, trial.values, strict=True)) if complete and trial.values else None,
                params=dict(trial.params),
                beta=float(beta) if beta is not None else None,
                effective_batch_size=int(effective) if effective is not None else None,
                seed=_config_value(config, "", "seed"),
                pareto=False,
                fit=measure_fit(record.metrics, curve_rows.get(trial.number, [])) if complete else None,
                failure_reason=stored_failure_reason(trial, reruns),
                failure_detail=record.failure_detail,
                # sweeper's pruners store the step; Optuna's own (single-objective studies) leave intermediate values
                pruned_step=_pruned_step(trial, record),
                pruned_reason=record.pruned_reason,
                runtime_s=record.runtime_s,
                config_hash=record.config_hash,
                training_config=config,
                library_versions=record.library_versions,
                dataset_fingerprint=record.dataset_fingerprint,
                train_rows=record.train_rows,
                eval_rows=record.eval_rows,
                bf16=record.bf16 if isinstance(record.bf16, bool) else None,
            )
        )
    return rows


def _parameters(complete: Sequence[FrozenTrial]) -> list[ParameterInfo]:
    distributions = {}
    for trial in complete:
        distributions.update(trial.distributions)
    infos = []
    for name, distribution in distributions.items():
        categorical = isinstance(distribution, CategoricalDistribution)
        numeric = not categorical or all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in distribution.choices
        )
        infos.append(ParameterInfo(name, bool(getattr(distribution, "log", False)), categorical, numeric))
    return infos


def _targets(completed: Sequence[TrialRow], names: Sequence[str]) -> dict[str, dict[int, float]]:
    """Target name -> {trial number: finite value}: the objectives, the gap and the training loss."""
    targets: dict[str, dict[int, float]] = {name: {} for name in (*names, GAP, TRAIN_LOSS)}
    for row in completed:
        for name, value in metric_values(row, names).items():
            if name in targets:
                targets[name][row.number] = value
    return targets


def parameter_value(row: TrialRow, parameter: str) -> float | None:
    """A trial's value of a swept parameter, or of the derived effective batch size; None unless a finite number."""
    value = row.effective_batch_size if parameter == EFFECTIVE_BATCH_SIZE else row.params.get(parameter)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _varies(rows: Sequence[TrialRow], parameter: str) -> bool:
    return len({parameter_value(row, parameter) for row in rows} - {None}) > 1


def _effect_shapes(
    rows: Sequence[TrialRow],
    parameters: Sequence[ParameterInfo],
    targets: Mapping[str, Mapping[int, float]],
    names: Sequence[str],
    directions: Sequence[str],
    pooled_sd: Mapping[str, float | None],
    seed: int,
    fits: SurrogateFits | None = None,
) -> tuple[list[EffectShape], list[PairInteraction]]:
    """Partial-dependence shapes of every numeric, varied parameter for each target (see _shapes.py), and the
    pairwise interactions from the same surrogates. Losses and the gap are better low; each objective in its own
    direction."""
    axes = _numeric_axes(rows, parameters)
    maximize = {target: target in names and directions[names.index(target)] == "maximize" for target in targets}
    # What the effective batch size (micro-batch x accumulation x devices) is made of: a surrogate holding both and
    # their product sees the same thing twice, so its shape comes from a surrogate holding it instead of them.
    other_axes = [axis for axis in axes if axis.name not in _BATCH_FACTORS]
    batch_axes = [*other_axes, ParameterAxis(EFFECTIVE_BATCH_SIZE, log_scale=True)]
    shapes, interactions = [], []
    for target, by_trial in targets.items():
        found_shapes, found_interactions = _surrogate_shapes(
            rows, axes, target, by_trial, maximize, pooled_sd, seed, fits=fits
        )
        shapes += found_shapes
        interactions += found_interactions
        if len(other_axes) < len(axes):  # a batch factor was swept
            batch_shapes, _ = _surrogate_shapes(
                rows, batch_axes, target, by_trial, maximize, pooled_sd, seed, interactions=False, fits=fits
            )
            shapes += [shape for shape in batch_shapes if shape.parameter == EFFECTIVE_BATCH_SIZE]
    return shapes, interactions


_BATCH_FACTORS = ("per_device_train_batch_size", "gradient_accumulation_steps")


def _surrogate_shapes(rows, axes, target, by_trial, maximize, pooled_sd, seed, interactions: bool = True, fits=None):
    """shapes_and_interactions of one target over the trials that have it and every parameter of `axes`."""
    usable = [
        row for row in rows
        if row.number in by_trial and all(parameter_value(row, axis.name) is not None for axis in axes)
    ]
    if not axes or not usable:
        return [], []
    return shapes_and_interactions(
        axes,
        {axis.name: [parameter_value(row, axis.name) for row in usable] for axis in axes},
        {target: [by_trial[row.number] for row in usable]},
        maximize,
        pooled_sd,
        seed,
        interactions=interactions,
        fits=fits,
    )


def _numeric_axes(rows: Sequence[TrialRow], parameters: Sequence[ParameterInfo]) -> list[ParameterAxis]:
    numeric = [p for p in parameters if p.numeric and _varies(rows, p.name)]
    return [ParameterAxis(p.name, p.log_scale or (p.categorical and _spans_factors(rows, p.name))) for p in numeric]


# Each advised trial costs a surrogate prediction with its covariance over every candidate move: linear in the
# advised trials, and a table of thousands of rows helps nobody. Larger studies advise the Pareto trials and the latest.
MAX_ADVISED_TRIALS = 200


def _one_blas_thread():
    """The surrogates' matrices are at most MAX_SURROGATE_TRIALS square (larger studies are subsampled), and for
    matrices that small a second BLAS thread only spins: the known study's analysis took 4.7 s with one thread
    against 16 to 26 s with two on a busy 2-core machine; at 3,000 trials the surrogates' Cholesky factorisations
    took 0.09 s each with two threads while a sweep ran beside it."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _advice(
    rows: Sequence[TrialRow],
    parameters: Sequence[ParameterInfo],
    targets: Mapping[str, Mapping[int, float]],
    names: Sequence[str],
    directions: Sequence[str],
    seed: int,
    fits: SurrogateFits | None = None,
) -> list[Advice]:
    """For each overfit or underfit trial, the one-parameter move the surrogates predict helps most (_advice.py)."""
    axes = _numeric_axes(rows, parameters)
    usable = [row for row in rows if all(parameter_value(row, axis.name) is not None for axis in axes)]
    labels = {row.number: row.fit.label for row in usable if row.fit and row.fit.label}
    if len(labels) > MAX_ADVISED_TRIALS:
        kept = pareto_then_latest([row for row in usable if row.number in labels], MAX_ADVISED_TRIALS)
        labels = {row.number: labels[row.number] for row in kept}
    return advise(
        axes,
        [{axis.name: parameter_value(row, axis.name) for axis in axes} for row in usable],
        labels,
        targets,
        {name: direction == "maximize" for name, direction in zip(names, directions, strict=True)},
        [row.number for row in usable],
        seed,
        fits,
    )


def _judge_each_side(
    claims: Sequence[ClaimVerdict],
    effects: Sequence[EffectShape],
    rows: Sequence[TrialRow],
    parameters: Sequence[ParameterInfo],
    targets: Mapping[str, Mapping[int, float]],
    pooled_sd: Mapping[str, float | None],
    n_bootstrap: int,
    seed: int,
) -> None:
    """Where the gap (else the training loss) has an optimum inside a claim's parameter range, judge the claim on
    the trials below and above it too (`ClaimVerdict.sides`)."""
    by_key = {(e.parameter, e.target): e for e in effects}
    infos = {p.name: p for p in parameters}
    judged = {name: targets[name] for name in (GAP, TRAIN_LOSS) if name in targets}
    for claim in claims:
        inside = [by_key.get((claim.parameter, target)) for target in (GAP, TRAIN_LOSS)]
        effect = next((e for e in inside if e is not None and e.shape == OPTIMUM_INSIDE), None)
        if effect is None or claim.parameter not in infos:
            continue
        for side, keep in (("below", lambda x: x < effect.optimum), ("above", lambda x: x >= effect.optimum)):
            side_rows = [row for row in rows if (x := parameter_value(row, claim.parameter)) is not None and keep(x)]
            measured = {
                (c.parameter, c.target): c
                for c in _correlations(side_rows, [infos[claim.parameter]], judged, pooled_sd, n_bootstrap, seed)
            }
            claim.sides.append(judge_side(
                claim.hyperparameter, side, effect.optimum, measured.get((claim.parameter, GAP)),
                measured.get((claim.parameter, TRAIN_LOSS)), pooled_sd.get(GAP),
            ))


def _spans_factors(rows: Sequence[TrialRow], parameter: str) -> bool:
    """A numeric choice such as the batch size (4, 8, 16) is read on a log scale: its steps are factors."""
    values = {parameter_value(row, parameter) for row in rows} - {None}
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 4


def _correlations(
    rows: Sequence[TrialRow],
    parameters: Sequence[ParameterInfo],
    targets: Mapping[str, Mapping[int, float]],
    pooled_sd: Mapping[str, float | None],
    n_bootstrap: int,
    seed: int,
) -> list[Correlation]:
    columns = [p.name for p in parameters if p.numeric]
    if EFFECTIVE_BATCH_SIZE not in columns:
        columns.append(EFFECTIVE_BATCH_SIZE)
    x_of = {column: {row.number: x for row in rows if (x := parameter_value(row, column)) is not None}
            for column in columns}
    # pairs over the same trials share one set of bootstrap resamples (normally all of them: every completed trial
    # has every parameter and target), each variable ranked once per resample
    groups: dict[tuple[int, ...], list[tuple[str, str]]] = defaultdict(list)
    for parameter in columns:
        for target, values in targets.items():
            numbers = tuple(row.number for row in rows if row.number in x_of[parameter] and row.number in values)
            groups[numbers].append((parameter, target))
    found = {}
    for numbers, pairs in groups.items():
        group_columns = {p: [x_of[p][n] for n in numbers] for p in dict.fromkeys(p for p, _ in pairs)}
        group_targets = {t: [targets[t][n] for n in numbers] for t in dict.fromkeys(t for _, t in pairs)}
        table = spearman_table(group_columns, group_targets, n_bootstrap, seed)
        for pair in pairs:
            found[pair] = (len(numbers), group_columns[pair[0]], group_targets[pair[1]], table[pair])
    correlations = []
    for parameter in columns:
        for target in targets:
            n_trials, xs, ys, (rho, low, high) = found[(parameter, target)]
            correlations.append(
                Correlation(
                    parameter=parameter,
                    target=target,
                    rho=rho,
                    ci_low=low,
                    ci_high=high,
                    n_trials=n_trials,
                    direction=direction_of(low, high),
                    strength=strength_of(rho),
                    high_minus_low=high_minus_low(xs, ys),
                    seed_sd=pooled_sd.get(target),
                )
            )
    return correlations


def _pareto_curves(
    pareto_numbers: Sequence[int], curve_rows: Mapping[int, list[Mapping[str, Any]]]
) -> list[CurveSeries]:
    series = []
    for number in pareto_numbers:
        for split in ("train", "eval"):
            points = loss_series(curve_rows.get(number, []), split)
            if points:
                series.append(CurveSeries(number, split, [p[0] for p in points], [p[1] for p in points]))
    return series


def _seed_spread(
    study_name: str,
    storage: Storage,
    rows: Sequence[TrialRow],
    names: Sequence[str],
    best_gain: float | None,
    rule: FitRule,
):
    companion = replicates_study_name(study_name)
    replicates: list[tuple[int, TrialRow]] = []
    if companion in storage.study_names():
        trials = optuna.load_study(study_name=companion, storage=storage.optuna).get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,)
        )
        replicate_rows, _ = _trial_rows(trials, _curve_reader(storage, companion), names)
        for trial, row in zip(trials, replicate_rows, strict=True):
            if row.fit is not None:
                row.fit = label_fit(row.fit, best_gain, rule)
            source = TrialRecord.of(trial).replicate_of
            if source is not None:
                replicates.append((int(source), row))
    sources = [row for row in rows if row.state == "COMPLETE"]
    return seed_spread(companion, sources, replicates, names)
