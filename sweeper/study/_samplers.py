"""The study file's `sampler:` and `pruner:` sections, and the Optuna objects they build."""

from __future__ import annotations

from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """Only `none` for now: pruning a multi-objective study needs a rule for which objective to watch."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["none"] = "none"


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


def build_sampler(spec: SamplerSpec, n_objectives: int, *, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a study file asks for.

    `seed_offset` (e.g. the worker index) keeps parallel workers of one study from drawing identical
    start-up trials from the same seed.
    """
    check_sampler_supports(spec.name, n_objectives)
    check_sampler_options(spec.name, spec.options)
    seed = None if spec.seed is None else spec.seed + seed_offset
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


def build_pruner(spec: PrunerSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()
