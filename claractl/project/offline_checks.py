"""Checks of a project that need no platform, beyond its schema and its names and references:
hosts and the Triton endpoint, paths confined to the project, model directories.

Each check skips values the schema already refused and values from `${env:NAME}` (a secret's value
is never put in a message); the loader runs them all and reports every problem at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from claractl.project.hosts import endpoint_problem, host_problem
from claractl.project.model import Diagnostic, ProjectError
from claractl.project.modelconfig import CONFIG_FILE, check_model_dir
from claractl.project.paths import Confinement, unusable
from claractl.project.yamlsource import Document, KeyPath, path_to_str

HOSTS: list[KeyPath] = [("services", "platform", "api-host"), ("services", "dicom-adapter", "host")]
HOSTS_IN_LISTS = [("sources", "host"), ("destinations", "host")]
ENDPOINTS: list[KeyPath] = [("services", "triton", "url")]
TLS: KeyPath = ("services", "dicom-adapter", "tls")
AUDIT: KeyPath = ("services", "platform", "audit")
CERTIFICATE_KEYS = ("certificate", "private-key", "ca-certificates")
# Files the services read (relative to the project file): DICOM TLS, the audit syslog's TLS.
SERVICE_FILES: list[KeyPath] = [section + (key,) for section in (TLS, AUDIT) for key in CERTIFICATE_KEYS]
SQLITE_PREFIX = "sqlite:///"


def _value(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict):
            return None
        data = data[part] if isinstance(part, int) else data.get(part)
    return data


def _strings(doc: Document, paths: list[KeyPath], skip: set[str]) -> list[tuple[KeyPath, str]]:
    """The non-empty string values at `paths`, except those at key paths in `skip` ("a.b[0].c")."""
    return [(p, v) for p in paths if path_to_str(p) not in skip and isinstance(v := _value(doc.data, p), str) and v]


def _in_lists(doc: Document, sections: list[tuple[str, str]]) -> list[KeyPath]:
    out: list[KeyPath] = []
    for section, key in sections:
        items = doc.data.get(section)
        out += [(section, i, key) for i in range(len(items))] if isinstance(items, list) else []
    return out


def check_hosts(doc: Document, skip: set[str]) -> list[Diagnostic]:
    out = []
    for path, value in _strings(doc, HOSTS + _in_lists(doc, HOSTS_IN_LISTS), skip):
        problem = host_problem(value)
        if problem:
            out.append(doc.diagnostic(path, problem))
    for path, value in _strings(doc, ENDPOINTS, skip):
        problem = endpoint_problem(value)
        if problem:
            out.append(doc.diagnostic(path, problem))
    return out


def confinement(doc: Document, root: Path) -> tuple[Confinement, list[Diagnostic]]:
    """The project folder plus `allow-paths` (each must be an existing directory)."""
    entries = doc.data.get("allow-paths")
    allowed, out = [], []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, str) or not entry:
            continue
        problem = unusable(entry)
        if problem or not (root / entry).is_dir():
            out.append(doc.diagnostic(("allow-paths", i), problem or f"no directory {entry}"))
        else:
            allowed.append(entry)
    return Confinement(root, allowed), out


def _sqlite_file(url: str) -> str | None:
    """The file of a `sqlite:///PATH` database URL (the platform opens it from its state dir)."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    return url[len(SQLITE_PREFIX):].split("?", 1)[0] or None


def check_paths(doc: Document, confined: Confinement, skip: set[str]) -> tuple[list[Diagnostic], set[KeyPath]]:
    """Paths that lead outside the project; returns the problems and their key paths (not to be read)."""
    out: list[Diagnostic] = []
    outside: set[KeyPath] = set()
    state_dir_path: KeyPath = ("target", "local", "state-dir")
    state_dir = _value(doc.data, state_dir_path)
    state_dir = state_dir if isinstance(state_dir, str) and path_to_str(state_dir_path) not in skip else ".clara"
    candidates = [(path, value, "") for path, value in _strings(doc, [state_dir_path], skip)]
    candidates += [(path, value, "") for path, value in _strings(doc, _in_lists(doc, [("models", "path"),
                                                                                     ("pipelines", "file")]), skip)]
    candidates += [(path, value, "") for path, value in _strings(doc, SERVICE_FILES, skip)]
    database_path: KeyPath = ("services", "platform", "database")
    state_dir_outside = confined.problem(state_dir) is not None      # said once, at the state dir
    for path, value in _strings(doc, [database_path], skip):
        file = _sqlite_file(value)
        if file is not None and not (state_dir_outside and not os.path.isabs(file)):
            candidates.append((path, os.path.join(state_dir, file), f"the database file {file} (in the state dir): "))
    for path, value, what in candidates:
        problem = confined.problem(value)
        if problem:
            out.append(doc.diagnostic(path, what + problem))
            outside.add(path)
    return out, outside


def _external_triton(doc: Document) -> bool:
    """A real Triton serves the models (any backend): an external `url`, or Triton on Kubernetes."""
    triton = _value(doc.data, ("services", "triton"))
    triton = triton if isinstance(triton, dict) else {}
    on_kubernetes = _value(doc.data, ("target", "type")) == "kubernetes"
    return bool(triton.get("url")) or (on_kubernetes and triton.get("enabled", True) is not False
                                       and not triton.get("embedded", False))


def check_tls(doc: Document, root: Path, outside: set[KeyPath], skip: set[str]) -> list[Diagnostic]:
    """Certificate files (DICOM TLS, audit syslog) exist; a DICOM TLS port needs a certificate and
    key; verify-clients needs the CA certificates to verify with."""
    out = [doc.diagnostic(path, f"file {value} not found")
           for path, value in _strings(doc, SERVICE_FILES, skip) if path not in outside and not (root / value).is_file()]
    tls = _value(doc.data, TLS)
    if not isinstance(tls, dict):
        return out
    if "port" in tls:
        out += [doc.diagnostic(TLS + ("port",), f"a TLS port needs tls.{key}")
                for key in ("certificate", "private-key") if not tls.get(key)]
    if tls.get("verify-clients") and not tls.get("ca-certificates"):
        out.append(doc.diagnostic(TLS + ("verify-clients",), "verify-clients needs tls.ca-certificates to verify "
                                                               "the senders' certificates with"))
    return out


def check_models(doc: Document, root: Path, outside: set[KeyPath]) -> list[Diagnostic]:
    """Each model `path` is a Triton model directory whose config.pbtxt parses and fits its files
    (claractl.project.modelconfig, the checks the platform runs on upload, without ONNX)."""
    out: list[Diagnostic] = []
    items = doc.data.get("models")
    external = _external_triton(doc)
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or ("models", i, "path") in outside:
            continue
        path, name = item.get("path"), item.get("name")
        if not isinstance(path, str) or not path:
            continue
        key = ("models", i, "path")
        directory = root / path
        if not directory.exists():
            out.append(doc.diagnostic(key, f"model directory {path} not found"))
        elif not directory.is_dir():
            out.append(doc.diagnostic(key, f"{path} is not a directory; expected a Triton model directory "
                                           f"({CONFIG_FILE} + version folders)"))
        elif not (directory / CONFIG_FILE).is_file():
            out.append(doc.diagnostic(key, f"model directory {path} has no {CONFIG_FILE}"))
        else:
            try:
                found = check_model_dir(Path(doc.beside(path)), name=name if isinstance(name, str) else None,
                                        allow_unsupported_backend=external)
            except ProjectError as exc:
                out += exc.diagnostics
                continue
            except OSError as exc:
                out.append(doc.diagnostic(key, f"cannot read model directory {path}: {exc.strerror or exc}"))
                continue
            out += found.check.diagnostics
    return out
