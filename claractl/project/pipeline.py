"""Clara pipeline definitions (PDL 0.3.0–0.7.0): schema, pipeline-level semantics, defaults.

`parse_pipeline(text)` needs no file on disk (the platform API validates PUT bodies with it).
Checks that need the project (models declared, destinations known) live in `loader.py`.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from claractl.project.model import Diagnostic, ProjectError
from claractl.project.placeholders import placeholder_problems, walk_strings
from claractl.project.schemas import schema_diagnostics
from claractl.project.yamlsource import Document, parse_text

REQUEST_DEFAULTS = {"cpu": 2, "gpu": 0, "memory": 1024}     # Clara's defaults (cores, GPUs, MB)
SERVICES_UNTIL = (0, 6)                                     # legacy `services`: api-version <= 0.6.x
MODELS_FROM = (0, 6, 0)                                     # `models`: api-version >= 0.6.0
TYPED_FROM = (0, 5, 0)                                      # typed inputs/outputs: api-version >= 0.5.0
SHARED_MEMORY_TYPES = ("array", "string")                   # Clara's shared-memory I/O (no path)


def parse_pipeline(text: str, source: str = "<api>") -> dict[str, Any]:
    """Parse and validate one pipeline definition; the definition with defaults filled in.

    Raises `ProjectError` with every problem (schema and pipeline-level semantics).
    """
    doc = parse_text(text, source)
    problems = check_pipeline(doc)
    if problems:
        raise ProjectError(problems)
    return with_defaults(doc.data)


def api_version(data: dict[str, Any]) -> tuple[int, ...] | None:
    text = data.get("api-version")
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return None


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A copy with `requests` defaults filled in and tags/command arguments as strings."""
    definition = copy.deepcopy(data)
    for operator in definition.get("operators", []):
        operator["requests"] = {**REQUEST_DEFAULTS, **(operator.get("requests") or {})}
        container = operator.get("container", {})
        if "tag" in container:
            container["tag"] = str(container["tag"])
        if "command" in container:
            container["command"] = [str(arg) for arg in container["command"]]
        operator.setdefault("input", [])
        operator.setdefault("output", [])
    definition.setdefault("parameters", {})
    if definition["parameters"] is None:
        definition["parameters"] = {}
    return definition


def check_pipeline(doc: Document) -> list[Diagnostic]:
    """Schema errors, then the semantic checks (which skip parts the schema already rejected)."""
    problems = schema_diagnostics("pipeline", doc)
    problems += _check_versioned_keys(doc)
    problems += _check_shared_memory(doc)
    problems += _check_names(doc)
    problems += _check_outputs(doc)
    problems += _check_inputs(doc)
    problems += _check_cycles(doc)
    problems += _check_placeholders(doc)
    return problems


def _operators(doc: Document) -> list[tuple[int, dict[str, Any]]]:
    ops = doc.data.get("operators")
    if not isinstance(ops, list):
        return []
    return [(i, op) for i, op in enumerate(ops) if isinstance(op, dict)]


def _named_operators(doc: Document) -> dict[str, tuple[int, dict[str, Any]]]:
    """Operators by lower-cased name (first one wins; duplicates are reported separately)."""
    named: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, op in _operators(doc):
        if isinstance(op.get("name"), str):
            named.setdefault(op["name"].lower(), (i, op))
    return named


def _list_of_dicts(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _check_versioned_keys(doc: Document) -> list[Diagnostic]:
    version = api_version(doc.data)
    if version is None:
        return []
    out = []
    shown = doc.data.get("api-version")
    for i, op in _operators(doc):
        if "services" in op and version[:2] > SERVICES_UNTIL:
            out.append(doc.diagnostic(("operators", i, "services"),
                                      f"`services` is legacy and ends with api-version 0.6; this file is {shown} "
                                      "(use `models` instead)", on_key=True))
        if "models" in op and version < MODELS_FROM:
            out.append(doc.diagnostic(("operators", i, "models"),
                                      f"`models` needs api-version 0.6.0 or later; this file is {shown} "
                                      "(use a TRTIS `services` entry, or raise api-version)", on_key=True))
    return out


def _duplicates(doc: Document, items: list[tuple[tuple, str]], what: str) -> list[Diagnostic]:
    """`items` are (path of the name, name); names compare case-insensitively."""
    seen: dict[str, tuple[tuple, str]] = {}
    out = []
    for path, name in items:
        key = name.lower()
        if key in seen:
            first_path, first = seen[key]
            same = f"'{first}'" if first == name else f"'{first}' (names are case-insensitive)"
            out.append(doc.diagnostic(path, f"duplicate {what} '{name}': same as {same} at line {doc.at(first_path).line}"))
        else:
            seen[key] = (path, name)
    return out


def _check_names(doc: Document) -> list[Diagnostic]:
    ops = _operators(doc)
    out = _duplicates(doc, [(("operators", i, "name"), op["name"]) for i, op in ops if isinstance(op.get("name"), str)],
                      "operator name")
    for i, op in ops:
        for key in ("models", "services"):
            out += _duplicates(doc, [(("operators", i, key, j, "name"), item["name"])
                                     for j, item in _list_of_dicts(op.get(key)) if isinstance(item.get("name"), str)],
                               f"{key[:-1]} name")
        for key in ("input", "output"):
            out += _duplicates(doc, [(("operators", i, key, j, "path"), item["path"])
                                     for j, item in _list_of_dicts(op.get(key)) if isinstance(item.get("path"), str)],
                               f"{key} path")
        input_paths = {item["path"] for _, item in _list_of_dicts(op.get("input")) if isinstance(item.get("path"), str)}
        for j, item in _list_of_dicts(op.get("output")):
            if item.get("path") in input_paths:
                out.append(doc.diagnostic(("operators", i, "output", j, "path"),
                                          f"path {item['path']} is used by both an input and an output"))
    return out


def _check_outputs(doc: Document) -> list[Diagnostic]:
    out = []
    for i, op in _operators(doc):
        outputs = _list_of_dicts(op.get("output"))
        if len(outputs) > 1:
            for j, item in outputs:
                if "name" not in item:
                    out.append(doc.diagnostic(("operators", i, "output", j),
                                              f"output needs a `name`: operator '{op.get('name')}' has "
                                              f"{len(outputs)} outputs"))
        out += _duplicates(doc, [(("operators", i, "output", j, "name"), item["name"])
                                 for j, item in outputs if isinstance(item.get("name"), str)], "output name")
    return out


def _check_shared_memory(doc: Document) -> list[Diagnostic]:
    """Clara's shared-memory entries (`type: array` / `string`, no path) have no counterpart here."""
    out = []
    for i, op in _operators(doc):
        for key, what in (("input", "inputs"), ("output", "outputs")):
            for j, item in _list_of_dicts(op.get(key)):
                if item.get("type") in SHARED_MEMORY_TYPES:
                    out.append(doc.diagnostic(("operators", i, key, j, "type"),
                                              f"shared-memory {what} are not supported by claractl; use a path "
                                              f"{key} (type: stream)"))
    return out


def _check_inputs(doc: Document) -> list[Diagnostic]:
    named = _named_operators(doc)
    typed = (api_version(doc.data) or (0,)) >= TYPED_FROM
    out = []
    for i, op in _operators(doc):
        for j, item in _list_of_dicts(op.get("input")):
            base = ("operators", i, "input", j)
            source, output_name = item.get("from"), item.get("name")
            if output_name is not None and source is None:
                # 0.5.0+: a named input without `from` is the job's payload (Clara's typed inputs).
                if not typed:
                    out.append(doc.diagnostic(base + ("name",), "`name` needs `from`: it names an output of the "
                                                                "operator given in `from` (a named input without "
                                                                "`from` needs api-version 0.5.0 or later)",
                                              on_key=True))
                continue
            if not isinstance(source, str):
                continue
            if isinstance(op.get("name"), str) and source.lower() == op["name"].lower():
                out.append(doc.diagnostic(base + ("from",), f"operator '{source}' cannot take its own output"))
                continue
            if source.lower() not in named:
                hint = difflib.get_close_matches(source, [o["name"] for _, o in named.values()], n=1, cutoff=0.6)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                out.append(doc.diagnostic(base + ("from",), f"no operator named '{source}'{suffix}"))
                continue
            producer = named[source.lower()][1]
            outputs = [o for _, o in _list_of_dicts(producer.get("output"))]
            names = [o["name"] for o in outputs if isinstance(o.get("name"), str)]
            if not outputs:
                out.append(doc.diagnostic(base + ("from",), f"operator '{source}' has no output"))
            elif isinstance(output_name, str):
                if output_name.lower() not in (n.lower() for n in names):
                    listed = ", ".join(names) or "only an unnamed one"
                    out.append(doc.diagnostic(base + ("name",), f"operator '{source}' has no output named "
                                                                f"'{output_name}' (outputs: {listed})"))
            elif len(outputs) > 1:
                out.append(doc.diagnostic(base + ("from",), f"operator '{source}' has {len(outputs)} outputs; "
                                                            f"say which with `name` (one of: {', '.join(names)})"))
    return out


def _check_cycles(doc: Document) -> list[Diagnostic]:
    """Report each cycle once, at the `from` that closes it."""
    named = _named_operators(doc)
    edges: dict[str, list[tuple[str, tuple]]] = {key: [] for key in named}   # consumer → [(producer, path)]
    for i, op in _operators(doc):
        if not isinstance(op.get("name"), str) or named.get(op["name"].lower(), (None,))[0] != i:
            continue
        for j, item in _list_of_dicts(op.get("input")):
            source = item.get("from")
            if isinstance(source, str) and source.lower() in named and source.lower() != op["name"].lower():
                edges[op["name"].lower()].append((source.lower(), ("operators", i, "input", j, "from")))
    out: list[Diagnostic] = []
    state: dict[str, int] = {}          # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for producer, path in edges[node]:
            if state.get(producer) == 1:
                cycle = stack[stack.index(producer):] + [producer]
                shown = " → ".join(named[n][1]["name"] for n in reversed(cycle))
                out.append(doc.diagnostic(path, f"operators form a cycle: {shown}"))
            elif producer not in state:
                visit(producer)
        stack.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node)
    return out


def _check_placeholders(doc: Document) -> list[Diagnostic]:
    parameters = doc.data.get("parameters")
    declared = set(parameters) if isinstance(parameters, dict) else set()
    out = []
    for path, text in walk_strings(doc.data.get("operators"), ("operators",)):
        names, malformed = placeholder_problems(text)
        if malformed:
            out.append(doc.diagnostic(path, malformed))
        for name in names:
            if name not in declared:
                hint = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
                suffix = f"; did you mean '{hint[0]}'?" if hint else ""
                out.append(doc.diagnostic(path, f"placeholder ${{{{ {name} }}}} is not declared under "
                                                f"`parameters`{suffix}"))
    return out
