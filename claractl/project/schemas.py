"""The JSON Schemas in `schemas/` (draft 2020-12), and their errors as positioned diagnostics."""

from __future__ import annotations

import difflib
import json
import re
from functools import lru_cache
from typing import Any, Iterable

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from claractl import resources
from claractl.project.model import Diagnostic
from claractl.project.yamlsource import Document

KINDS = ("project", "pipeline", "operator")

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


@lru_cache(maxsize=None)
def load_schema(kind: str) -> dict[str, Any]:
    """The schema document for `kind` (project | pipeline | operator)."""
    if kind not in KINDS:
        raise ValueError(f"unknown schema {kind!r}; expected one of {', '.join(KINDS)}")
    return json.loads(resources.schema_path(kind).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` with JSON Schema's (ECMA 262) meaning of `$`: the end of the text. Python's `$`
    also matches before a final newline, so "ORGANSEG\n" would pass "^[A-Z]+$"; `\\Z` does not."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]):
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=None)
def validator(kind: str) -> Draft202012Validator:
    # Schemas refer to each other by file name ("operator.schema.json"), which is also how an
    # editor resolves them next to each other; register them under exactly those names.
    registry: Registry = Registry().with_resources(
        (f"{name}.schema.json", Resource.from_contents(load_schema(name), default_specification=DRAFT202012))
        for name in KINDS
    )
    checker = validators.extend(Draft202012Validator, {"pattern": _pattern})
    return checker(load_schema(kind), registry=registry)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _expected_types(expected: str | list[str]) -> str:
    names = [_TYPE_NAMES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected)]
    return " or ".join(names)


def _show(value: Any) -> str:
    text = (json.dumps(value, ensure_ascii=False) if isinstance(value, (str, int, float, bool)) or value is None
            else _type_name(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_keys(error: ValidationError, doc: Document, base: tuple) -> list[Diagnostic]:
    allowed = list(error.schema.get("properties", {}))
    known = set(allowed)
    out = []
    for key in error.instance:
        if key in known:
            continue
        path = base + tuple(error.absolute_path) + (key,)
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key '{key}'"
        if hint:
            message += f"; did you mean '{hint[0]}'?"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
        out.append(doc.diagnostic(path, message, on_key=True))
    return out


def _message(error: ValidationError) -> str:
    kind, schema, value = error.validator, error.schema, error.instance
    custom = schema.get("x-error") if isinstance(schema, dict) else None
    if kind == "type":
        return f"expected {_expected_types(error.validator_value)}, got {_type_name(value)} {_show(value) if not isinstance(value, (dict, list)) else ''}".rstrip()
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'"
    if kind in ("enum", "const"):
        options = error.validator_value if kind == "enum" else [error.validator_value]
        if custom:
            return f"{custom}, got {_show(value)}"
        hint = difflib.get_close_matches(str(value), [str(o) for o in options], n=1, cutoff=0.6)
        suffix = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"{_show(value)} is not one of: {', '.join(str(o) for o in options)}{suffix}"
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if low is not None and high is not None:
            if "exclusiveMinimum" in schema or "exclusiveMaximum" in schema:
                above = f"more than {low}" if "exclusiveMinimum" in schema else f"at least {low}"
                below = f"less than {high}" if "exclusiveMaximum" in schema else f"at most {high}"
                return f"{_show(value)} is out of range; expected {above} and {below}"
            return f"{_show(value)} is out of range; expected {low} to {high}"
        if kind == "exclusiveMinimum":
            return f"{_show(value)} is too small; expected more than {low}"
        if kind == "minimum":
            return f"{_show(value)} is too small; expected at least {low}"
        return f"{_show(value)} is too large; expected at most {high}"
    if kind == "maxLength":
        return f"{_show(value)} is {len(value)} characters long; at most {error.validator_value} allowed"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return f"needs at least {error.validator_value} item{'s' if error.validator_value != 1 else ''}"
    if kind == "pattern":
        return f"{_show(value)}: {custom}" if custom else f"{_show(value)} does not match {error.validator_value}"
    return error.message


def schema_diagnostics(kind: str, doc: Document, data: Any = None, base: tuple = ()) -> list[Diagnostic]:
    """Every schema violation of `data` (default: the whole document) as a positioned diagnostic.

    `base` is the path of `data` inside `doc` (when validating a part of a document).
    """
    data = doc.data if data is None else data
    out: list[Diagnostic] = []
    for error in validator(kind).iter_errors(data):
        out.extend(_diagnose(error, doc, base))
    return out


def _diagnose(error: ValidationError, doc: Document, base: tuple) -> list[Diagnostic]:
    path = base + tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys(error, doc, base)
    if "propertyNames" in error.schema_path:        # about a key: positioned on the key itself
        return [doc.diagnostic(path + (error.instance,), _message(error), on_key=True)]
    if error.validator in ("anyOf", "oneOf") and error.context:
        return _diagnose(best_match(error.context), doc, base)
    return [doc.diagnostic(path, _message(error))]
