"""The search-space grammar of a study file's `space:` section, and the Optuna suggestions it makes.

    orpo.learning_rate: {log_uniform: [1.0e-5, 1.0e-2]}      float on a log scale (low > 0)
    lora.lora_dropout:  {uniform: [0.0, 0.3], step: 0.05}     float, optionally on a grid
    lora.r:             {int: [4, 32], step: 4}               int; `log: true` instead of `step` for a log scale
    orpo.per_device_train_batch_size: {choice: [4, 8, 16]}    categorical
    lora.target_modules: [q_proj, v_proj]                     anything else is a fixed value

A parameter's Optuna name is the last segment of its dotted path (`learning_rate`), so the dashboard stays
readable, unless two paths share a last segment: then both use the whole dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

FORM_MODIFIERS: dict[str, frozenset[str]] = {
    "log_uniform": frozenset(),
    "uniform": frozenset({"step"}),
    "int": frozenset({"step", "log"}),
    "choice": frozenset(),
}
_FORMS_TEXT = "{log_uniform: [low, high]}, {uniform: [low, high]}, {int: [low, high]} or {choice: [a, b, ...]}"


class SpaceError(ValueError):
    """One space entry a person must fix; the message names the path, the value and the fix."""


@dataclass(frozen=True)
class Parameter:
    """One `space:` entry: a distribution to sample from, or (distribution None) a fixed value."""

    path: str
    distribution: BaseDistribution | None
    fixed_value: Any = None

    @property
    def is_fixed(self) -> bool:
        return self.distribution is None

    def candidate_values(self) -> list[Any]:
        """The values that bound what this entry can produce: checked against the training config up front."""
        if self.distribution is None:
            return [self.fixed_value]
        if isinstance(self.distribution, CategoricalDistribution):
            return list(self.distribution.choices)
        return [self.distribution.low, self.distribution.high]


def parse_parameter(path: str, entry: Any) -> Parameter:
    """One grammar entry -> a Parameter. Raises SpaceError naming the path, the value and the fix."""
    if not isinstance(entry, Mapping):
        return Parameter(path, None, entry)
    forms = [key for key in entry if key in FORM_MODIFIERS]
    if not forms:
        raise SpaceError(
            f"{path}: {dict(entry)!r} names no search form (unknown key(s) {sorted(map(str, entry))}). "
            f"Fix: use one of {_FORMS_TEXT}, or a bare value to fix the parameter"
        )
    if len(forms) > 1:
        raise SpaceError(
            f"{path}: {dict(entry)!r} names two search forms ({', '.join(forms)}); an entry takes exactly one. "
            "Fix: keep one form, or split the entry"
        )
    form = forms[0]
    extra = sorted(str(key) for key in entry if key != form and key not in FORM_MODIFIERS[form])
    if extra:
        allowed = ", ".join(sorted(FORM_MODIFIERS[form])) or "no modifiers"
        raise SpaceError(
            f"{path}: {form} does not take {', '.join(extra)} (got {dict(entry)!r}); it takes {allowed}. "
            "Fix: remove the key or check its spelling"
        )
    if form == "choice":
        return Parameter(path, _categorical(path, entry["choice"]))
    low, high = _bounds(path, form, entry[form], integer=form == "int")
    if form == "log_uniform":
        _log_range_positive(path, form, low, high)
        return Parameter(path, FloatDistribution(float(low), float(high), log=True))
    if form == "uniform":
        step = entry.get("step")
        if step is not None:
            step = _positive_step(path, step, integer=False)
            _range_fits_step(path, low, high, step)
        return Parameter(path, FloatDistribution(float(low), float(high), step=step))
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{path}: int's `log` must be true or false (got {log!r}). Fix: log: true, or drop it")
    step = entry.get("step", 1)
    step = _positive_step(path, step, integer=True)
    if log:
        if step != 1:
            raise SpaceError(
                f"{path}: int takes `log: true` or a `step`, not both (got step {step!r}): a log scale has no "
                "even grid. Fix: drop one of them"
            )
        _log_range_positive(path, form, low, high)
    _range_fits_step(path, low, high, step)
    return Parameter(path, IntDistribution(int(low), int(high), log=log, step=step))


def _bounds(path: str, form: str, bounds: Any, *, integer: bool) -> tuple[float, float]:
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SpaceError(f"{path}: {form} takes a list [low, high] (got {bounds!r}). Fix: e.g. {{{form}: [1, 8]}}")
    for bound in bounds:
        _check_number(path, form, bound, integer=integer)
    low, high = bounds
    if low >= high:
        raise SpaceError(
            f"{path}: {form} range [{low!r}, {high!r}] is empty or inverted: low must be below high. "
            "Fix: swap the bounds, or use a bare value to fix the parameter"
        )
    return low, high


def _check_number(path: str, form: str, value: Any, *, integer: bool) -> None:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        quoted = isinstance(value, str) and _reads_as_float(value)
        hint = f" {value!r} is text, not a number: write it without quotes." if quoted else ""
        raise SpaceError(f"{path}: {form} bounds must be {kind} (got {value!r}).{hint} Fix: give numeric bounds")


def _reads_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _log_range_positive(path: str, form: str, low: float, high: float) -> None:
    if low <= 0:
        raise SpaceError(
            f"{path}: a log-scale range must stay above 0 (got [{low!r}, {high!r}]): log(0) is undefined. "
            f"Fix: raise low to a positive value{' (at least 1)' if form == 'int' else ''}, or use "
            f"{'{int: [...]} without log' if form == 'int' else '{uniform: [...]}'}"
        )


def _positive_step(path: str, step: Any, *, integer: bool) -> Any:
    if isinstance(step, bool) or not isinstance(step, int | float) or (integer and not isinstance(step, int)):
        kind = "an integer" if integer else "a number"
        raise SpaceError(f"{path}: step must be {kind} (got {step!r}). Fix: e.g. step: {1 if integer else 0.05}")
    if step <= 0:
        raise SpaceError(f"{path}: step must be above 0 (got {step!r}). Fix: give a positive step or remove it")
    return step if integer else float(step)


def _range_fits_step(path: str, low: float, high: float, step: float) -> None:
    # Optuna would silently lower `high` to the last grid point; say so instead.
    span, grid = Decimal(str(high)) - Decimal(str(low)), Decimal(str(step))
    if span % grid != 0:
        last = Decimal(str(low)) + (span // grid) * grid
        raise SpaceError(
            f"{path}: the range [{low!r}, {high!r}] is not a whole number of steps of {step!r}. "
            f"Fix: set high to {float(last) if isinstance(step, float) else int(last)!r} or change the step"
        )


def _categorical(path: str, choices: Any) -> CategoricalDistribution:
    if not isinstance(choices, list) or not choices:
        raise SpaceError(
            f"{path}: choice takes a non-empty list of values (got {choices!r}). Fix: e.g. {{choice: [4, 8, 16]}}"
        )
    kinds = set()
    for value in choices:
        if value is None:
            continue  # null may join any type: "no cap" next to numbers is a real choice
        if isinstance(value, bool):
            kinds.add("boolean")
        elif isinstance(value, int | float):
            kinds.add("number")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            raise SpaceError(
                f"{path}: choice values must be scalars (number, string, boolean or null), got {value!r}. "
                "Fix: fix list-valued parameters with a bare value instead"
            )
    if len(kinds) > 1:
        raise SpaceError(
            f"{path}: choice mixes {' and '.join(sorted(kinds))} values ({choices!r}); a typo such as '8' next to "
            "16 is the usual cause. Fix: give values of one type"
        )
    duplicates = sorted({repr(value) for value in choices if choices.count(value) > 1})
    if duplicates:
        raise SpaceError(
            f"{path}: choice lists {', '.join(duplicates)} more than once ({choices!r}), which would weight it "
            "twice. Fix: list each value once"
        )
    return CategoricalDistribution(choices)


class SearchSpace:
    """The parsed `space:` section: dotted TrainingConfig paths -> Optuna distributions or fixed values."""

    def __init__(self, entries: Mapping[str, Any]) -> None:
        self.entries: dict[str, Any] = dict(entries)  # as written, so a spec dumps back to its own YAML
        self.parameters: dict[str, Parameter] = {path: parse_parameter(path, entry) for path, entry in entries.items()}
        last_segments = [path.rsplit(".", 1)[-1] for path in self.parameters]
        self._names = {
            path: last if last_segments.count(last) == 1 else path
            for path, last in zip(self.parameters, last_segments, strict=True)
        }
        self._paths = {name: path for path, name in self._names.items()}

    def __repr__(self) -> str:
        return f"SearchSpace({self.entries!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.entries == other.entries

    @property
    def paths(self) -> list[str]:
        return list(self.parameters)

    @property
    def searched_paths(self) -> list[str]:
        return [path for path, parameter in self.parameters.items() if not parameter.is_fixed]

    def param_name(self, path: str) -> str:
        if path not in self._names:
            raise KeyError(f"{path!r} is not in the search space; it holds {', '.join(self.parameters)}")
        return self._names[path]

    def path_of(self, param_name: str) -> str:
        if param_name not in self._paths:
            raise KeyError(
                f"trial parameter {param_name!r} is not in this study's search space "
                f"(known: {', '.join(self._paths)}); was the study file's space changed after the trial ran?"
            )
        return self._paths[param_name]

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna parameter name -> distribution, for the searched (not fixed) entries."""
        return {
            self._names[path]: parameter.distribution
            for path, parameter in self.parameters.items()
            if parameter.distribution is not None
        }

    def fixed_values(self) -> dict[str, Any]:
        return {path: parameter.fixed_value for path, parameter in self.parameters.items() if parameter.is_fixed}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Dotted path -> value for one trial: sampled entries through `trial.suggest_*`, fixed ones as written."""
        values = {}
        for path, parameter in self.parameters.items():
            name, distribution = self._names[path], parameter.distribution
            if distribution is None:
                values[path] = parameter.fixed_value
            elif isinstance(distribution, CategoricalDistribution):
                values[path] = trial.suggest_categorical(name, list(distribution.choices))
            elif isinstance(distribution, IntDistribution):
                values[path] = trial.suggest_int(
                    name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
                )
            else:
                values[path] = trial.suggest_float(
                    name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
                )
        return values

    def overrides_from_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's Optuna params (FrozenTrial.params) -> dotted overrides, fixed entries included.

        A parameter missing from `params` is left out (a trial that failed before sampling it); an unknown one is
        an error, since its value would otherwise be silently dropped from an export.
        """
        overrides = self.fixed_values()
        for name, value in params.items():
            overrides[self.path_of(name)] = value
        return overrides
