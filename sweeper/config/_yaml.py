"""Reading YAML safely, with errors that name the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._errors import ConfigError


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader (never constructs Python objects) that also reads `1e-4` as a float, as people write it.
    YAML 1.1 wants `1.0e-4` and would otherwise hand back the string "1e-4"."""


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml_text(text: str):
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - SafeLoader subclass: no object construction


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found. Pass the path of a YAML file (see configs/ and studies/).")
    try:
        # a safe loader never constructs Python objects: a config file cannot execute code
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {describe_yaml_error(error)}") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty. It needs a YAML mapping at the top level.")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values, got {type(data).__name__}.")
    return data


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """Where and what, in one line; a Python-object tag gets its own explanation, since it is refused on purpose."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    tag = re.search(r"tag:yaml\.org,2002:(python/\S+?)'?$", problem)
    if isinstance(error, yaml.constructor.ConstructorError) and tag:
        return (
            f"{where}the tag !!{tag.group(1)} asks to build a Python object, which is refused: study and config "
            "files are read as plain data (safe YAML) and never run code. Fix: remove the tag and write the value"
        )
    context = getattr(error, "context", None)
    return f"not valid YAML, {where}{problem}{f' ({context})' if context else ''}. Fix the syntax at that spot"


def describe_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: `file: field.path: message (got value)`."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against the schema in README.md"
        elif problem["type"] == "model_type":
            message = f"is a section: write its fields under it as a mapping, e.g. {location}: {{...}}"
        value = problem.get("input")
        shown = "" if problem["type"] == "missing" or isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{source}: {location}: {message}{shown}")
    return "\n".join(lines)
