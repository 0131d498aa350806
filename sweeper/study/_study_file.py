"""The study file (`studies/<name>.yaml`): one file declares a whole study, checked in full when it is read.

Every bound and choice in `space:` is applied to the base config and validated there, so a misspelt path or a
value outside a field's range fails when the file is read, not in trial 17.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from optuna.distributions import CategoricalDistribution, FloatDistribution

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from sweeper.config import ConfigError, TrainingConfig, build_training_config, read_training_mapping, read_yaml_mapping
from sweeper.config._yaml import describe_validation_error

from ._objectives import OBJECTIVES, Direction
from ._samplers import PrunerSpec, SamplerSpec, check_sampler_supports
from ._space import Parameter, SearchSpace, SpaceError


class ObjectiveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A registered objective; see sweeper.study.OBJECTIVES.")
    direction: Direction | None = Field(None, description="Defaults to the objective's own; the other is an error.")

    @model_validator(mode="after")
    def _registered(self) -> ObjectiveSpec:
        if self.name not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.name!r}; known objectives: {', '.join(OBJECTIVES)}")
        natural = OBJECTIVES[self.name].direction
        if self.direction is None:
            self.direction = natural
        elif self.direction != natural:
            better = "lower" if natural == "minimize" else "higher"
            raise ValueError(
                f"{self.name} is better when {better}, so it must {natural} (got direction {self.direction!r}). "
                f"Fix: set direction: {natural}, or leave direction out"
            )
        return self


MAX_STUDY_NAME = 100  # names runs/<study_name>/ and files in it; file systems allow 255 bytes per name


class StudySpec(BaseModel):
    """One study: what to train (base config + fixed overrides), what to search, what to optimise, and how."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    study_name: str = Field(description="Names the Optuna study in storage; letters, digits, `.`, `_`, `-`.")
    base_config: Path = Field(description="Training config every trial starts from; relative to the study file.")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Dotted overrides applied to every trial.")
    space: SearchSpace = Field(description="Dotted TrainingConfig paths -> a grammar form (see _space.py).")
    objectives: list[ObjectiveSpec] = Field(description="One or more registered objectives; two or more = Pareto.")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    n_trials: int | None = Field(None, description="Trials to finish, counted over all workers.")
    timeout_s: float | None = Field(None, description="Stop starting new trials after this many seconds.")
    storage: str | None = Field(None, description="Optuna storage URL; defaults to sqlite:///runs/<study_name>.db.")
    pack: int = Field(
        1,
        ge=1,
        description="Trials a worker trains at once on one copy of the base model (packed trials, see "
        "sweeper/training/_pack.py). 1 trains one at a time. Speeds a sweep up where one trial leaves the device "
        "idle (a GPU at small micro-batches); slower on a CPU, whose cores one trial already keeps busy.",
    )
    allow_repeats: bool = Field(
        False,
        description="Run a configuration a trial already ran. Off: such a draw is stored as FAIL (`repeated "
        "configuration`), not counted, and another is drawn; a repeat would count twice in the analysis. "
        "`sweeper replicate` measures seed noise either way.",
    )

    # the base config as read once, when the study file was: every trial of this process builds on the same text,
    # so an edit of the file during a sweep changes nothing under a running worker (a new worker's input check sees it)
    _base: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _read_base_once(self) -> StudySpec:
        self._base = read_training_mapping(self.base_config)
        return self

    @property
    def base_mapping(self) -> dict[str, Any]:
        """The base config as read when the study file was loaded (a copy: building a config never changes it)."""
        return copy.deepcopy(self._base)

    def with_base(self, base: Mapping[str, Any]) -> StudySpec:
        """This study with another whole training config as its base and no fixed values: `sweeper replicate` re-runs
        a trial's stored config this way."""
        changed = self.model_copy(update={"fixed": {}})
        changed._base = copy.deepcopy(dict(base))
        return changed

    @field_validator("study_name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if len(name) > MAX_STUDY_NAME:
            raise ValueError(
                f"a study name is at most {MAX_STUDY_NAME} characters (got {len(name)}): it names a folder, files and "
                "database rows. Fix: shorten it"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(
                "a study name uses letters, digits, `.`, `_` and `-` only (it names files and database rows). "
                "Fix: e.g. orpo-tiny-default"
            )
        return name

    @field_validator("base_config")
    @classmethod
    def _base_config_valid(cls, path: Path) -> Path:
        path = path.resolve()
        try:
            build_training_config(read_training_mapping(path), source=str(path))
        except ConfigError as error:
            raise ValueError(f"the base config does not load: {error}") from None
        return path

    @field_validator("fixed")
    @classmethod
    def _fixed_valid(cls, fixed: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for path in fixed:
            _training_field(path)
        if "base_config" in info.data:
            try:
                build_training_config(read_training_mapping(info.data["base_config"]), fixed, source="base config + fixed")
            except ConfigError as error:
                raise ValueError(f"{error}. Fix: give values the training config accepts") from None
        return fixed

    @field_validator("space", mode="before")
    @classmethod
    def _space_valid(cls, entries: Any, info: ValidationInfo) -> SearchSpace:
        if isinstance(entries, SearchSpace):
            entries = entries.entries
        if not isinstance(entries, Mapping) or not entries:
            raise ValueError(
                f"space must map dotted training-config paths to search forms (got {entries!r}). "
                "Fix: e.g. space: {orpo.learning_rate: {log_uniform: [1.0e-5, 1.0e-2]}}"
            )
        for path in entries:
            if not isinstance(path, str):
                raise ValueError(f"{path!r}: a space key must be a dotted path such as orpo.learning_rate")
            _training_field(path)
        try:
            space = SearchSpace(entries)
        except SpaceError as error:
            raise ValueError(str(error)) from None
        fixed = info.data.get("fixed")
        both = sorted(set(fixed or {}) & set(entries))
        if both:
            raise ValueError(
                f"{', '.join(both)}: set in both `fixed` and `space`; which should win is unclear. "
                "Fix: keep it in one of them"
            )
        for parameter in space.parameters.values():
            if _is_integer_field(parameter.path) and isinstance(parameter.distribution, FloatDistribution):
                raise ValueError(
                    f"{parameter.path}: an integer field cannot take a float range ({entries[parameter.path]!r}). "
                    "Fix: use {int: [low, high]} or {choice: [...]}"
                )
        if "base_config" in info.data and fixed is not None:
            _check_space_values(space, read_training_mapping(info.data["base_config"]), fixed, info.data["base_config"])
        return space

    @field_validator("objectives")
    @classmethod
    def _objectives_distinct(cls, objectives: list[ObjectiveSpec]) -> list[ObjectiveSpec]:
        if not objectives:
            raise ValueError("no objectives; name at least one, e.g. - {name: eval_nll_loss, direction: minimize}")
        names = [objective.name for objective in objectives]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once. Fix: list each objective once")
        return objectives

    @field_validator("n_trials", "timeout_s", mode="before")
    @classmethod
    def _not_a_truth_value(cls, value: Any, info) -> Any:
        if isinstance(value, bool):  # YAML's true/yes would otherwise read as 1
            raise ValueError(f"{info.field_name} is a number, not {str(value).lower()}. Fix: give a count or null")
        return value

    @field_validator("n_trials")
    @classmethod
    def _positive_trials(cls, n_trials: int | None) -> int | None:
        if n_trials is not None and n_trials <= 0:
            raise ValueError("n_trials must be at least 1. Fix: give a positive count, or null with timeout_s set")
        return n_trials

    @field_validator("timeout_s")
    @classmethod
    def _positive_timeout(cls, timeout_s: float | None) -> float | None:
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("timeout_s must be above 0 seconds. Fix: give a positive time, or null with n_trials set")
        return timeout_s

    @field_validator("storage")
    @classmethod
    def _looks_like_url(cls, storage: str | None) -> str | None:
        if storage is not None and "://" not in storage:
            raise ValueError(
                "storage must be a database URL. Fix: e.g. sqlite:///runs/study.db or postgresql://user@host/db"
            )
        return storage

    @model_validator(mode="after")
    def _complete(self) -> StudySpec:
        if self.n_trials is None and self.timeout_s is None:
            raise ValueError("neither n_trials nor timeout_s is set, so the study would never stop. Fix: set one")
        check_sampler_supports(self.sampler.name, len(self.objectives))
        self.check_packable()
        if self.storage is None:
            self.storage = f"sqlite:///runs/{self.study_name}.db"
        return self

    def check_packable(self) -> None:
        """Packed trials share one base model: a study that varies the model cannot pack them."""
        varied = [path for path in self.space.entries if path.startswith("model.")]
        if self.pack > 1 and varied:
            raise ValueError(
                f"pack: {self.pack} trains a worker's trials on one base model, but the space varies "
                f"{', '.join(varied)}. Fix: set pack: 1, or fix the model"
            )

    @field_serializer("space")
    def _space_as_written(self, space: SearchSpace) -> dict[str, Any]:
        return dict(space.entries)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "study file") -> StudySpec:
        """Validate a parsed study file; every problem becomes a ConfigError naming `source`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            # pydantic prefixes our own messages with "Value error, "; they read better without it
            raise ConfigError(describe_validation_error(source, error).replace("Value error, ", "")) from None

    @property
    def directions(self) -> list[str]:
        return [str(objective.direction) for objective in self.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [objective.name for objective in self.objectives]

    def objective_values(
        self, eval_metrics: Mapping[str, float], train_metrics: Mapping[str, float], beta: float
    ) -> list[float]:
        """The values to tell Optuna, in the study's objective order."""
        return [OBJECTIVES[name].compute(eval_metrics, train_metrics, beta) for name in self.objective_names]

    def metrics_needed(self) -> tuple[frozenset[str], frozenset[str]]:
        """(evaluation metrics, training metrics) the objectives read, as the curves table names them
        (`nll_loss`, not `eval_nll_loss`): what a pruning decision reads of its peers' curves."""
        eval_seen, train_seen = _ReadRecorder(), _ReadRecorder()
        self.objective_values(eval_seen, train_seen, 1.0)  # every registered formula is defined at 1.0
        return frozenset(key.removeprefix("eval_") for key in eval_seen.read), frozenset(train_seen.read)

    def distributions(self) -> dict[str, Any]:
        return self.space.distributions()

    def training_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's Optuna params -> every dotted override to apply to the base config (fixed + sampled)."""
        return {**self.fixed, **self.space.overrides_from_params(params)}

    def training_config(self, params: Mapping[str, Any]) -> TrainingConfig:
        """The full training config of a trial with these Optuna params."""
        overrides = self.training_overrides(params)
        return build_training_config(self.base_mapping, overrides, source=f"{self.study_name} trial")


def load_study_spec(path: str | Path, n_trials: int | None = None, storage: str | None = None) -> StudySpec:
    """Read and check a study file. `n_trials` and `storage`, when given (CLI flags), replace the file's."""
    path = Path(path)
    data = read_yaml_mapping(path)
    if isinstance(data.get("base_config"), str):
        try:
            data["base_config"] = str((path.parent / data["base_config"]).resolve())
        except (RuntimeError, OSError) as error:  # a symbolic link loop
            raise ConfigError(
                f"{path}: base_config: {data['base_config']}: cannot be followed ({error}). Fix: point it at the file"
            ) from None
    if n_trials is not None:
        data["n_trials"] = n_trials
    if storage is not None:
        data["storage"] = storage
    return StudySpec.from_mapping(data, source=str(path))


def _section_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        if _is_section(field.annotation):
            paths += _section_paths(field.annotation, f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


_FIELD_PATHS = _section_paths(TrainingConfig)


def _training_field(path: str) -> Any:
    """The pydantic field a dotted path names, or a ValueError saying what is wrong and the nearest real path."""
    model: type[BaseModel] = TrainingConfig
    parts = path.split(".")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            close = difflib.get_close_matches(path, _FIELD_PATHS, n=1)
            hint = f"did you mean {close[0]}?" if close else "see the fields in configs/tiny.yaml"
            raise ValueError(f"{path}: not a field of the training config; {hint}")
        last = depth == len(parts) - 1
        if _is_section(field.annotation):
            if last:
                inner = ", ".join(p for p in _FIELD_PATHS if p.startswith(f"{path}."))
                raise ValueError(f"{path}: is a section, not a value; name one of its fields: {inner}")
            model = field.annotation
        elif not last:
            raise ValueError(f"{path}: {'.'.join(parts[: depth + 1])} is a value, not a section")
        else:
            return field
    raise AssertionError("unreachable: the loop returns or raises on the last part")


def _is_integer_field(path: str) -> bool:
    annotation = _training_field(path).annotation
    return annotation is int or set(get_args(annotation)) == {int, type(None)}


def _is_choice(parameter: Parameter) -> bool:
    return isinstance(parameter.distribution, CategoricalDistribution)


def _check_space_values(space: SearchSpace, base_data: dict[str, Any], fixed: dict[str, Any], base: Path) -> None:
    """Apply every bound, choice and fixed value to the base config, so a bad one fails now, not mid-sweep."""
    for parameter in space.parameters.values():
        for value in parameter.candidate_values():
            try:
                build_training_config(base_data, {**fixed, parameter.path: value}, source=base.name)
            except ConfigError as error:
                kind = "value" if parameter.is_fixed else "choice" if _is_choice(parameter) else "bound"
                raise ValueError(
                    f"{parameter.path}: the {kind} {value!r} is not accepted by the training config "
                    f"({error}). Fix: keep {space.entries[parameter.path]!r} within what the field accepts"
                ) from None


def beta_scaled_warnings(spec: StudySpec) -> list[str]:
    """One warning per chosen beta-scaled objective, when the study searches beta (fixed beta is a fair compare)."""
    if "orpo.beta" not in spec.space.searched_paths:
        return []
    return [
        f"objective {choice.name}: {OBJECTIVES[choice.name].beta_note}"
        for choice in spec.objectives
        if OBJECTIVES[choice.name].beta_scaled
    ]


class _ReadRecorder(dict):
    """A metrics mapping that holds every key (as 1.0) and remembers which ones were read."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> float:
        self.read.add(key)
        return 1.0
