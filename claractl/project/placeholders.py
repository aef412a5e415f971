"""`${{ name }}` placeholders of Clara pipeline definitions, and `${env:NAME}` in the project file."""

from __future__ import annotations

import copy
import os
import re
from typing import Any, Iterator, Mapping

PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
PLACEHOLDER_START = "${{"
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_START = "${env:"


class PlaceholderError(ValueError):
    """A job's variables do not fit its pipeline's placeholders (unknown name, no value)."""


def placeholder_problems(text: str) -> tuple[list[str], str | None]:
    """Names used in `text`, and a message if a `${{` is not a well-formed placeholder."""
    names = PLACEHOLDER.findall(text)
    rest = PLACEHOLDER.sub("", text)
    if PLACEHOLDER_START in rest:
        return names, "malformed placeholder; expected ${{ name }} with a name of letters, digits, _ and -"
    return names, None


def walk_strings(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string inside `value` with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, path + (index,))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_placeholders(definition: dict[str, Any], variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A copy of a parsed pipeline definition with every `${{ name }}` replaced.

    Values come from `variables` (job start), else from the definition's `parameters` defaults.
    Raises `PlaceholderError` (a ValueError) for a variable the pipeline does not declare, or a
    placeholder with neither a value nor a default.
    """
    variables = dict(variables or {})
    parameters = dict(definition.get("parameters") or {})
    unknown = sorted(set(variables) - set(parameters))
    if unknown:
        declared = ", ".join(sorted(parameters)) or "none"
        raise PlaceholderError(f"pipeline {definition.get('name', '?')!r} has no parameter "
                               f"{', '.join(repr(u) for u in unknown)} (declared: {declared})")
    values = {**parameters, **variables}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PlaceholderError(f"placeholder ${{{{ {name} }}}} is not declared under `parameters`")
        if values[name] is None:
            raise PlaceholderError(f"parameter {name!r} has no default; give it as a job variable")
        return _text(values[name])

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            return PLACEHOLDER.sub(substitute, value)
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return copy.copy(value)

    resolved = {key: (copy.deepcopy(item) if key == "parameters" else resolve(item)) for key, item in definition.items()}
    return resolved


def env_names(text: str) -> tuple[list[str], str | None]:
    """`${env:NAME}` names used in `text`, and a message if a `${env:` is malformed."""
    names = ENV_REF.findall(text)
    if ENV_START in ENV_REF.sub("", text):
        return names, "malformed ${env:NAME}; NAME is letters, digits and _ and does not start with a digit"
    return names, None


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return ENV_REF.sub(lambda m: environ[m.group(1)], text)
