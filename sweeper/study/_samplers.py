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


class SamplerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["tpe", "nsga2", "gp", "random"] = Field(
        "tpe", description="tpe: strong default, handles categoricals; nsga2: needs a large budget; gp: best for "
        "few trials of continuous parameters; random: the baseline."
    )
    seed: int | None = Field(0, description="Same study file + seed = same suggestions; null draws a fresh seed.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the Optuna sampler.")

    @model_validator(mode="after")
    def _known_options(self) -> SamplerSpec:
        check_sampler_options(self.name, self.options)
        build_sampler(self, n_objectives=1)  # surfaces Optuna's own checks (e.g. population_size < 2) on reading
        return self


class PrunerSpec(BaseModel):
    """`none`, or `dominated`: multi-objective pruning in the spirit of MO-ASHA (Schmucker et al. 2021).

    Optuna refuses `Trial.report` in multi-objective studies, so sweeper prunes from the evaluations it stores: at
    each rung a trial computes the study's objectives from its evaluation there and compares that vector with the
    vectors the other trials (complete, pruned or running; not failed) had at the same rung. Once at least
    `min_peers` of them have reached the rung, the trial stops when at least `dominated_fraction` of them (and at
    least one) dominate it: as good in every objective and better in one. It is stored as PRUNED with its curve and
    the reason. Example: `pruner: {name: dominated, rungs: [0.25, 0.5], min_peers: 4, dominated_fraction: 0.5}`.
    """

    model_config = ConfigDict(extra="forbid")

    name: Literal["none", "dominated"] = Field("none", description="none: every trial runs its whole schedule.")
    rungs: list[StrictFloat | StrictInt] | None = Field(
        None,
        description="Where trials are compared: fractions of each trial's own schedule (0 < f < 1, e.g. 0.25 = a "
        "quarter of its optimizer steps) or absolute optimizer steps (whole numbers >= 1), not mixed. A rung is "
        "checked at the first evaluation at or after it, so eval_steps sets how early a rung can act.",
    )
    min_peers: StrictInt | None = Field(
        None, description="Trials that must have reached a rung before it prunes anything (default 4)."
    )
    dominated_fraction: float | None = Field(
        None, description="Share of those trials that must dominate a trial to stop it, in (0, 1] (default 0.5)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> PrunerSpec:
        options = {"rungs": self.rungs, "min_peers": self.min_peers, "dominated_fraction": self.dominated_fraction}
        if self.name == "none":
            given = [name for name, value in options.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: only the dominated pruner takes {'these' if len(given) > 1 else 'this'}. "
                    "Fix: set name: dominated, or remove them"
                )
            return self
        self.rungs = _checked_rungs(self.rungs)
        self.min_peers = DEFAULT_MIN_PEERS if self.min_peers is None else self.min_peers
        self.dominated_fraction = DEFAULT_DOMINATED_FRACTION if self.dominated_fraction is None else self.dominated_fraction
        if self.min_peers < 1:
            raise ValueError(f"min_peers: {self.min_peers!r} must be a whole number >= 1, e.g. 4")
        if not 0 < self.dominated_fraction <= 1:
            raise ValueError(
                f"dominated_fraction: {self.dominated_fraction!r} must be above 0 and at most 1, e.g. 0.5 = stop a "
                "trial that half of its peers dominate"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.name != "none"


DEFAULT_MIN_PEERS = 4
DEFAULT_DOMINATED_FRACTION = 0.5


def _checked_rungs(rungs: list[float | int] | None) -> list[float | int]:
    if not rungs:
        raise ValueError(
            "rungs: the dominated pruner needs at least one rung. Fix: e.g. rungs: [0.25, 0.5] (fractions of each "
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
