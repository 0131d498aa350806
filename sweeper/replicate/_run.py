"""`sweeper replicate`: re-run the top Pareto configurations with other seeds, to measure the noise floor.

Each replicate is a trial of the companion study `<study_name>.replicates` in the same storage, run by the sweep's
own `TrialObjective` (same metrics, curves and failure handling), tagged with `replicate_of` and `replicate_seed`.
Only the top-level `seed` changes (adapter initialisation, data order, dropout); the data and its split stay.
Running it again resumes: pairs (source trial, seed) already complete are skipped, failed ones run again.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..config import ConfigError, build_training_config
from ..storage import CurveStore, Storage, TrialRecord, pareto_front, replicates_study_name
from ..study import StudySpec
from ..sweep import HeartbeatSettings, TrialObjective, open_study
from ..trial import TrialFailure


@dataclass
class ReplicateRun:
    source_trial: int
    seed: int
    trial_number: int
    state: str
    values: list[float] | None


def top_pareto_trials(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The Pareto front ordered best-first on the first objective (one objective: the best trials), first `top`."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"study {study.study_name!r} has no completed trials to replicate; run `sweeper sweep` first")
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MINIMIZE else -1.0
    candidates = pareto_front(study) if len(study.directions) > 1 else complete
    return sorted(candidates, key=lambda t: (sign * t.values[0], t.number))[:top]


def replicate_seeds(source_seed: int, count: int) -> list[int]:
    """`count` seeds other than the source's: the next ones up, so the same command always picks the same seeds."""
    return [source_seed + offset for offset in range(1, count + 1)]


def _stored_config(source: FrozenTrial, seed: int) -> dict:
    """The config the source trial trained with, with another seed: a replicate's whole base config."""
    return {**TrialRecord.of(source).training_config, "seed": seed}


def check_reproducible(spec: StudySpec, source: FrozenTrial) -> None:
    """The objective rebuilds a config from the study's space and the trial's params on top of the stored config;
    refuse when that would not be the stored config (the study file's space changed since the trial ran)."""
    stored = TrialRecord.of(source).training_config
    try:
        rebuilt = spec.with_base(stored).training_config(source.params)
    except (ConfigError, KeyError) as error:
        rebuilt, reason = None, str(error)
    # compared after validation, so fields the schema gained since (with their defaults) do not count as changes
    expected = build_training_config(stored, source=f"trial {source.number}: training_config").model_dump(mode="json")
    if rebuilt is None or rebuilt.model_dump(mode="json") != expected:
        raise ConfigError(
            f"study {spec.study_name!r}, trial {source.number}: its parameters no longer rebuild its stored config "
            f"under this study file's space{': ' + reason if rebuilt is None else ''}. Fix: replicate with the study "
            "file the sweep ran with"
        )


def _seeds_of(source: FrozenTrial, count: int) -> list[int]:
    return replicate_seeds(int(TrialRecord.of(source).training_config.get("seed", 0)), count)


class _ReplicateObjective:
    """Reads which trial and seed to re-run from the trial's own user attributes, so a replicate left WAITING by an
    interrupted run is still run as what it says it is."""

    def __init__(self, spec: StudySpec, sources: dict[int, FrozenTrial], curves: CurveStore, device_count: int):
        self.spec, self.sources, self.curves, self.device_count = spec, sources, curves, device_count

    def __call__(self, trial: optuna.Trial) -> list[float]:
        record = TrialRecord.of(trial)
        source = self.sources[record.replicate_of]
        # the source's stored config is the base: only the seed differs from what the source trial ran
        spec = self.spec.with_base(_stored_config(source, int(record.replicate_seed)))
        return TrialObjective(spec, self.curves, self.device_count, refuse_repeats=False)(trial)


def run_replicates(
    spec: StudySpec,
    top: int,
    seeds: int,
    heartbeat: HeartbeatSettings = HeartbeatSettings(),
    device_count: int = 1,
    storage: Storage | None = None,
) -> list[ReplicateRun]:
    """Run every missing (source trial, seed) replicate of the top `top` Pareto trials; return all of them.
    `storage`: the command's (see `Storage`); without it, the study's is opened here."""
    if top < 1 or seeds < 1:
        raise ConfigError(f"--top {top} --seeds {seeds}: both must be 1 or more")
    if storage is None:
        with Storage.open(spec.storage, heartbeat.interval_s, heartbeat.grace_s, existing=True) as opened:
            return run_replicates(spec, top, seeds, heartbeat, device_count, opened)
    try:
        source_study = optuna.load_study(study_name=spec.study_name, storage=storage.optuna)
    except KeyError:
        raise ConfigError(
            f"no study {spec.study_name!r} in {storage.redacted}; run `sweeper sweep` before replicating it"
        ) from None
    sources = {trial.number: trial for trial in top_pareto_trials(source_study, top)}
    for trial in sources.values():
        if not isinstance(TrialRecord.of(trial).training_config, dict):
            raise ConfigError(
                f"study {spec.study_name!r}, trial {trial.number}: no stored training_config to re-run; "
                "it was recorded by an older sweeper"
            )
        check_reproducible(spec, trial)
    companion_spec = spec.model_copy(update={"study_name": replicates_study_name(spec.study_name), "n_trials": None})
    study = open_study(companion_spec, storage.optuna)

    def pairs(states: tuple[TrialState, ...]) -> set[tuple[int, int]]:
        records = [TrialRecord.of(t) for t in study.get_trials(deepcopy=False, states=states)]
        return {(r.replicate_of, r.replicate_seed) for r in records if r.replicate_of is not None}

    queued = pairs((TrialState.COMPLETE, TrialState.WAITING))
    for number, source in sources.items():
        for seed in _seeds_of(source, seeds):
            if (number, seed) not in queued:
                queued_record = TrialRecord(replicate_of=number, replicate_seed=seed)
                study.enqueue_trial(dict(source.params), user_attrs=queued_record.user_attrs())
    all_sources = {t.number: t for t in source_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    objective = _ReplicateObjective(companion_spec, all_sources, storage.curves, device_count)
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.optimize(objective, n_trials=1, catch=(TrialFailure,))

    wanted = {(number, seed) for number, source in sources.items() for seed in _seeds_of(source, seeds)}
    runs = [(TrialRecord.of(t), t) for t in study.get_trials(deepcopy=False)]
    return [
        ReplicateRun(r.replicate_of, r.replicate_seed, t.number, t.state.name, list(t.values) if t.values else None)
        for r, t in runs
        if (r.replicate_of, r.replicate_seed) in wanted
    ]
