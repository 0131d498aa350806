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
    YAML 1.1 wants `1.0e-4` and would otherwise hand back the string "1e-4". A key written twice in one mapping is
    an error: YAML would keep the last silently."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # keys merged in by `<<:` may be overridden on purpose
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is written twice in one mapping (YAML would keep only the "
                        "last); remove one", key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


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


MAX_YAML_BYTES = 1_000_000  # a study file or training config is a page of settings, not data
MAX_YAML_VALUES = 100_000  # values after expanding aliases: an alias bomb of a few hundred bytes expands to billions
MAX_SHOWN_CHARS = 200  # a value echoed in an error message is cut after this many characters
# `user:password@` anywhere in a text, the password running to the last `@` before a `/` (an unencoded `@` in it)
_PASSWORD_BEFORE_AT = re.compile(r"([^\s:/@'\"]*:)[^\s/'\"]*@")


def redact_secrets(text: str) -> str:
    """The text with every `user:password@` password replaced by `***`, whatever the shape of the URL around it
    (parsed or not: `postgresql//u:p@h`, `postgresql:/u:p@h`, a password with an unencoded `@`)."""
    return _PASSWORD_BEFORE_AT.sub(r"\1***@", text)


def shown_value(value: Any) -> str:
    """A value as an error message echoes it: secrets hidden, cut to a readable length."""
    text = redact_secrets(repr(value))
    return text if len(text) <= MAX_SHOWN_CHARS else f"{text[:MAX_SHOWN_CHARS]}... ({len(text)} characters)"


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node stands for once every alias is expanded, counted without expanding (memoised)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a recursive alias counts once while its size is being counted
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_YAML_VALUES + 1)
    return sizes[id(node)]


def load_yaml_text(text: str):
    """Plain data from YAML text; refuses text whose aliases expand past `MAX_YAML_VALUES` values."""
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise ConfigError(
                f"its aliases (*name) expand to more than {MAX_YAML_VALUES:,} values, which no settings file needs "
                "(a YAML alias bomb?). Fix: write the values out, or use fewer nested aliases"
            )
        return loader.construct_document(node)  # noqa: S506 - SafeLoader subclass: no object construction
    finally:
        loader.dispose()


def _why_not_a_file(path: Path) -> str:
    if path.is_dir():
        return "is a folder, not a file"
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "is a symbolic link that loops"
        except OSError as error:
            return f"is a symbolic link that cannot be followed ({error.strerror})"
    return "file not found"


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {_why_not_a_file(path)}. Pass the path of a YAML file (see configs/ and studies/).")
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: {size:,} bytes; a study file or training config is at most {MAX_YAML_BYTES:,}. "
                "Fix: check that this is the settings file (data goes in data.source)"
            )
        # a safe loader never constructs Python objects: a config file cannot execute code
        data = load_yaml_text(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: {describe_yaml_error(error)}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}). "
            "Fix: save the file as UTF-8"
        ) from None
    except ConfigError as error:
        if str(error).startswith(str(path)):
            raise
        raise ConfigError(f"{path}: {error}") from None
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
        shown = "" if problem["type"] == "missing" or isinstance(value, dict) else f" (got {shown_value(value)})"
        lines.append(f"{source}: {location}: {message}{shown}")
    return "\n".join(lines)
