"""The study file's `sampler:` and `pruner:` sections, and the Optuna objects they build."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

# Options a YAML file can set, per sampler, with their types. Callables (gamma, mutation, constraints_func, ...)
# cannot be written in YAML, and the TPE arguments Optuna deprecated in 4.9 are left out on purpose.
SAMPLER_OPTIONS: dict[str, dict[str, type]] = {
    "tpe": {
        "n_startup_trials": int,
        "n_ei_candidates": int,
        "multivariate": bool,
        "group": bool,
        "constant_liar": bool,
    },
    "nsga2": {"population_size": int, "mutation_prob": float, "crossover_prob": float, "swapping_prob": float},
    "gp": {"n_startup_trials": int, "deterministic_objective": bool},
    "random": {},
}
# GPSampler learnt multi-objective optimisation (log EHVI) in Optuna 4.4.
_GP_MULTI_OBJECTIVE_SINCE = (4, 4)
# The GP sampler fits every completed trial: its memory grows with their square and its time with their cube (2
# cores: a suggestion 11 s at 1,000 trials, 60 s at 2,000, 205-261 s and 2.8 GB at 3,000; at 10,000 over 20 GB and
# none in 7 minutes). Past this many a worker stops asking it (sweep/_worker.py) unless the study file sets
# `max_trials`.
GP_MAX_TRIALS = 2000


class SamplerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["tpe", "nsga2", "gp", "random"] = Field(
        "tpe", description="tpe: strong default, handles categoricals; nsga2: needs a large budget; gp: best for "
        "few trials of continuous parameters; random: the baseline."
    )
    seed: int | None = Field(0, description="Same study file + seed = same suggestions; null draws a fresh seed.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the Optuna sampler.")
    max_trials: StrictInt | None = Field(
        None, description=f"gp only: the most completed trials a worker asks it to suggest from (default "
        f"{GP_MAX_TRIALS}); past them the worker stops, naming the fix. Its cost grows with the cube of the trials."
    )

    @model_validator(mode="after")
    def _known_options(self) -> SamplerSpec:
        check_sampler_options(self.name, self.options)
        if self.max_trials is not None and self.name != "gp":
            raise ValueError(f"max_trials: only the gp sampler takes it, not {self.name}. Fix: remove max_trials")
        if self.name == "gp":
            self.max_trials = GP_MAX_TRIALS if self.max_trials is None else self.max_trials
            if self.max_trials < 1:
                raise ValueError(f"max_trials: {self.max_trials!r} must be a whole number >= 1, e.g. {GP_MAX_TRIALS}")
        build_sampler(self, n_objectives=1)  # surfaces Optuna's own checks (e.g. population_size < 2) on reading
        return self


class PrunerSpec(BaseModel):
    """Multi-objective early stopping. Optuna refuses `Trial.report` in multi-objective studies, so sweeper prunes
    from the evaluations it stores: at each rung a trial computes the study's objectives from its evaluation there
    and compares that vector with the vectors the other trials (complete, pruned or running; not failed) had at the
    same rung. A pruned trial is stored as PRUNED with its curve, the step and the reason.

    - `none`: every trial runs its whole schedule.
    - `dominated`: once at least `min_peers` trials have reached the rung, the trial stops when at least
      `dominated_fraction` of them (and at least one) dominate it: as good in every objective and better in one.
      Example: `pruner: {name: dominated, rungs: [0.25, 0.5], min_peers: 4, dominated_fraction: 0.5}`.
    - `asha`: asynchronous successive halving with promotion by Pareto order, in the spirit of MO-ASHA (Schmucker
      et al. 2021): the trial goes on when it is among the first 1/`reduction_factor` of the trials that reached
      the rung, ordered by non-domination rank, then by hypervolume contribution. Example: `pruner: {name: asha,
      reduction_factor: 3}` (rungs by default at 1/9 and 1/3 of the schedule: reduction_factor^-2, ^-1).
    - `multi_metric`: OptunaHub's multi_metric_pruner (the Optuna maintainers' answer to optuna#3450; vendored in
      sweeper/_vendor): the Pareto ranks of the trials at each rung go to Optuna's MedianPruner, which stops a
      trial whose best rank so far is worse than the median of the finished trials' ranks at that rung, once
      `min_peers` trials have finished. Example: `pruner: {name: multi_metric, rungs: [0.25, 0.5]}`.
    bench/pruning.py compares them (docs/benchmarks.md, Pruning).
    """

    model_config = ConfigDict(extra="forbid")

    name: Literal["none", "dominated", "asha", "multi_metric"] = Field(
        "none", description="none: every trial runs its whole schedule; dominated, asha, multi_metric: see above."
    )
    rungs: list[StrictFloat | StrictInt] | None = Field(
        None,
        description="Where trials are compared: fractions of each trial's own schedule (0 < f < 1, e.g. 0.25 = a "
        "quarter of its optimizer steps) or absolute optimizer steps (whole numbers >= 1), not mixed. A rung is "
        "checked at the first evaluation at or after it, so eval_steps sets how early a rung can act. Needed by "
        "dominated; asha defaults to reduction_factor^-2 and ^-1, multi_metric to [0.25, 0.5].",
    )
    min_peers: StrictInt | None = Field(
        None, description="dominated: trials that must have reached a rung before it prunes anything (default 4); "
        "multi_metric: finished trials before it prunes anything (MedianPruner's n_startup_trials, default 4)."
    )
    dominated_fraction: float | None = Field(
        None, description="dominated: share of those trials that must dominate a trial to stop it, in (0, 1] "
        "(default 0.5)."
    )
    reduction_factor: StrictInt | None = Field(
        None, description="asha: 1 in reduction_factor of the trials at a rung go on (default 3, at least 2)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> PrunerSpec:
        options = {
            "rungs": self.rungs, "min_peers": self.min_peers, "dominated_fraction": self.dominated_fraction,
            "reduction_factor": self.reduction_factor,
        }
        given = [name for name, value in options.items() if value is not None and name not in _OPTIONS[self.name]]
        if given:
            takers = {option: [name for name, taken in _OPTIONS.items() if option in taken] for option in given}
            raise ValueError(
                "; ".join(f"{option}: only {_listed(names)} takes it" for option, names in takers.items())
                + f", not {self.name}. Fix: remove {', '.join(given)}, or choose a pruner that takes "
                + ("them" if len(given) > 1 else "it")
            )
        if self.name == "none":
            return self
        if self.name == "asha":
            self.reduction_factor = DEFAULT_REDUCTION_FACTOR if self.reduction_factor is None else self.reduction_factor
            if self.reduction_factor < 2:
                raise ValueError(
                    f"reduction_factor: {self.reduction_factor!r} must be a whole number >= 2, e.g. 3 = one trial in "
                    "three goes on past each rung"
                )
            if self.rungs is None:
                self.rungs = [round(self.reduction_factor ** -2, 4), round(1 / self.reduction_factor, 4)]
        if self.name == "multi_metric" and self.rungs is None:
            self.rungs = list(DEFAULT_MULTI_METRIC_RUNGS)
        self.rungs = _checked_rungs(self.rungs, self.name)
        if self.name in ("dominated", "multi_metric"):
            self.min_peers = DEFAULT_MIN_PEERS if self.min_peers is None else self.min_peers
            if self.min_peers < 1:
                raise ValueError(f"min_peers: {self.min_peers!r} must be a whole number >= 1, e.g. 4")
        if self.name == "dominated":
            fraction = self.dominated_fraction
            self.dominated_fraction = DEFAULT_DOMINATED_FRACTION if fraction is None else fraction
            if not 0 < self.dominated_fraction <= 1:
                raise ValueError(
                    f"dominated_fraction: {self.dominated_fraction!r} must be above 0 and at most 1, e.g. 0.5 = stop "
                    "a trial that half of its peers dominate"
                )
        return self

    @property
    def enabled(self) -> bool:
        return self.name != "none"


# the options each pruner reads; any other one given is an error naming who takes it
_OPTIONS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "dominated": frozenset({"rungs", "min_peers", "dominated_fraction"}),
    "asha": frozenset({"rungs", "reduction_factor"}),
    "multi_metric": frozenset({"rungs", "min_peers"}),
}
DEFAULT_MIN_PEERS = 4


def _listed(pruners: list[str]) -> str:
    if len(pruners) == 1:
        return f"the {pruners[0]} pruner"
    return f"the {', '.join(pruners[:-1])} or {pruners[-1]} pruner"


DEFAULT_DOMINATED_FRACTION = 0.5
DEFAULT_REDUCTION_FACTOR = 3
DEFAULT_MULTI_METRIC_RUNGS = (0.25, 0.5)


def _checked_rungs(rungs: list[float | int] | None, pruner: str) -> list[float | int]:
    if not rungs:
        raise ValueError(
            f"rungs: the {pruner} pruner needs at least one rung. Fix: e.g. rungs: [0.25, 0.5] (fractions of each "
            "trial's schedule) or rungs: [20, 40] (optimizer steps)"
        )
    for rung in rungs:
        if isinstance(rung, float) and not 0 < rung < 1:
            raise ValueError(
                f"rungs: {rung!r}: a fraction of the schedule must lie strictly between 0 and 1, and a step count "
                "must be a whole number >= 1 (written without a decimal point). Fix: e.g. 0.5 or 20"
            )
        if isinstance(rung, int) and rung < 1:
            raise ValueError(f"rungs: {rung!r}: a step count must be >= 1. Fix: e.g. rungs: [20, 40]")
    if len({type(rung) for rung in rungs}) > 1:
        raise ValueError(
            f"rungs: {rungs!r} mixes fractions of the schedule and step counts, which trials of different lengths "
            "would order differently. Fix: use only fractions (e.g. [0.25, 0.5]) or only steps (e.g. [20, 40])"
        )
    if len(set(rungs)) != len(rungs):
        raise ValueError(f"rungs: {rungs!r} lists a rung twice. Fix: list each rung once")
    return sorted(rungs)


def check_sampler_options(name: str, options: dict[str, Any]) -> None:
    accepted = SAMPLER_OPTIONS[name]
    for option, value in options.items():
        if option not in accepted:
            known = ", ".join(accepted) or "none"
            raise ValueError(
                f"options.{option}: the {name} sampler has no option {option!r} (got {value!r}); "
                f"its options are: {known}"
            )
        wanted = accepted[option]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        fits = isinstance(value, bool) if wanted is bool else (
            number and (wanted is float or isinstance(value, int))
        )
        if not fits:
            raise ValueError(f"options.{option}: the {name} sampler wants {wanted.__name__} (got {value!r})")


def check_sampler_supports(name: str, n_objectives: int) -> None:
    if name == "gp" and n_objectives > 1 and _optuna_version() < _GP_MULTI_OBJECTIVE_SINCE:
        raise ValueError(
            f"the gp sampler handles one objective in Optuna {optuna.__version__} (got {n_objectives}); "
            "multi-objective GP needs Optuna >= 4.4. Fix: upgrade Optuna, or use tpe or nsga2"
        )


def _optuna_version() -> tuple[int, int]:
    major, minor = optuna.__version__.split(".")[:2]
    return int(major), int(minor)


def build_sampler(spec: SamplerSpec, n_objectives: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a study file asks for, seeded per trial (see TrialSeededSampler)."""
    check_sampler_supports(spec.name, n_objectives)
    check_sampler_options(spec.name, spec.options)
    _seeded_sampler(spec, spec.seed)  # surfaces Optuna's own option checks now, not at the first trial
    return TrialSeededSampler(spec)


def _seeded_sampler(spec: SamplerSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        if spec.name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **{"multivariate": True, **spec.options})
        if spec.name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **spec.options)
        if spec.name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **spec.options)
        return optuna.samplers.RandomSampler(seed=seed)
    except ValueError as error:  # Optuna's own range checks, e.g. population_size < 2
        raise ValueError(f"sampler {spec.name} with options {spec.options!r}: {error}") from None


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A seed for one trial's draws: a pure function of the study's seed and the trial's number."""
    digest = hashlib.sha256(f"{study_seed}:{trial_number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """The study file's sampler, rebuilt before every trial with a seed derived from the trial's number.

    A sampler seeded once per process replays the same draws whenever a process starts again: a resumed sweep, a
    second worker with the same index, or a `worker` started by hand repeated earlier trials' configurations.
    Trial numbers are handed out once per study by the storage, so seeding from them makes every trial's draws
    different from every other trial's, in any process, while the same study file and seed still give the same
    trials in the same order. The samplers keep their history in the storage, so rebuilding loses nothing.
    """

    def __init__(self, spec: SamplerSpec):
        self._spec = spec
        self._sampler = _seeded_sampler(spec, spec.seed)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seed = None if self._spec.seed is None else trial_seed(self._spec.seed, trial.number)
        self._sampler = _seeded_sampler(self._spec, seed)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    """Optuna's own pruners watch one reported value, which multi-objective studies refuse: Optuna's pruner stays a
    no-op and the dominated pruner runs beside the trainer (sweeper/sweep/_intermediate.py)."""
    return optuna.pruners.NopPruner()
