"""Load `clara.yaml` and every pipeline file it names into a validated `Project`.

Order: parse (positions kept) → schema → `${env:NAME}` secrets → semantic checks (names,
references, ports; hosts, paths kept inside the project, model directories: offline_checks.py) →
pipeline files → typed values. Every problem found is collected and
raised at once as one `ProjectError`, sorted by position.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from pathlib import Path
from typing import Any

from claractl.project import DEFAULT_FILE
from claractl.project.availability import check_availability
from claractl.project.defaults import SERVICE_DEFAULTS, TARGET_DEFAULTS, merge_defaults
from claractl.project.model import (
    AETitleRef, DestinationRef, Diagnostic, Lifecycle, ModelRef, PipelineRef, Project, ProjectError,
    Secret, SourceRef, Target,
)
from claractl.project.offline_checks import (
    SERVICE_FILES, check_hosts, check_models, check_paths, check_tls, confinement,
)
from claractl.project.pipeline import check_pipeline, with_defaults
from claractl.project.placeholders import env_names, expand_env, walk_strings
from claractl.project.schemas import schema_diagnostics
from claractl.project.yamlsource import Document, parse_file, path_to_str

SECRET_SECTIONS = ("services", "target")        # where `${env:NAME}` may appear
SERVICE_PORTS = [                                # (service, key) of ports one local machine listens on
    (("services", "platform", "api-port"), "platform"), (("services", "platform", "grpc-port"), "platform"),
    (("services", "dicom-adapter", "port"), "dicom-adapter"), (("services", "dicom-adapter", "tls", "port"), "dicom-adapter"),
    (("services", "triton", "http-port"), "triton"), (("services", "triton", "grpc-port"), "triton"),
    (("services", "render", "port"), "render"),
]


def load_project(path: str | os.PathLike[str] = DEFAULT_FILE) -> Project:
    """Read, validate and return the project; raises `ProjectError` with every problem."""
    source = str(path)
    doc = parse_file(path, source)
    root = Path(path).resolve().parent
    problems = schema_diagnostics("project", doc)
    secrets, secret_problems = _resolve_secrets(doc)
    # Values the schema refused, and secrets (never shown in a message), are not checked again.
    skip = {d.key_path for d in problems} | {path_to_str(path) for path in secrets}
    problems += secret_problems
    problems += _check_unique_names(doc)
    problems += _check_references(doc)
    problems += _check_ports(doc)
    problems += check_availability(doc, skip)
    problems += check_hosts(doc, skip)
    confined, allow_problems = confinement(doc, root)
    path_problems, outside = check_paths(doc, confined, skip)      # what is outside is never read
    problems += allow_problems + path_problems
    problems += check_models(doc, root, outside)
    problems += check_tls(doc, root, outside, skip)
    pipelines, pipeline_problems = _load_pipelines(doc, root, outside)
    problems += pipeline_problems
    if problems:
        raise ProjectError(problems)
    return _build(Path(path).resolve(), doc, root, secrets, pipelines)


# --- secrets ---------------------------------------------------------------------------------

def _resolve_secrets(doc: Document) -> tuple[dict[tuple, Secret], list[Diagnostic]]:
    secrets: dict[tuple, Secret] = {}
    problems = []
    for path, text in walk_strings(doc.data):
        names, malformed = env_names(text)
        if not names and not malformed:
            continue
        if malformed:
            problems.append(doc.diagnostic(path, malformed))
            continue
        if path[0] not in SECRET_SECTIONS:
            problems.append(doc.diagnostic(path, "${env:NAME} is only allowed under services and target"))
            continue
        missing = [name for name in names if name not in os.environ]
        if missing:
            problems.append(doc.diagnostic(path, f"environment variable {', '.join(missing)} is not set"))
            continue
        secrets[path] = Secret(env=",".join(dict.fromkeys(names)), value=expand_env(text))
    return secrets, problems


# --- semantic checks -------------------------------------------------------------------------

def _items(doc: Document, section: str) -> list[tuple[int, dict[str, Any]]]:
    value = doc.data.get(section)
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []


def _names(doc: Document, section: str, key: str = "name") -> dict[str, str]:
    """lower-cased name → name as written, for the entries of `section`."""
    return {item[key].lower(): item[key] for _, item in _items(doc, section) if isinstance(item.get(key), str)}


def _check_unique_names(doc: Document) -> list[Diagnostic]:
    out = []
    for section, key, what in [("models", "name", "model"), ("pipelines", "name", "pipeline"),
                               ("sources", "name", "source"), ("destinations", "name", "destination"),
                               ("ae-titles", "ae-title", "AE title")]:
        seen: dict[str, tuple[int, str]] = {}
        for i, item in _items(doc, section):
            name = item.get(key)
            if not isinstance(name, str):
                continue
            folded = name.strip().lower()
            if folded in seen:
                j, first = seen[folded]
                note = "" if first == name else " (names are case-insensitive)"
                out.append(doc.diagnostic((section, i, key), f"duplicate {what} '{name}': same as '{first}' at line "
                                                            f"{doc.at((section, j, key)).line}{note}"))
            else:
                seen[folded] = (i, name)
    return out


def _unknown(what: str, name: str, known: dict[str, str], where: str) -> str:
    hint = difflib.get_close_matches(name, list(known.values()), n=1, cutoff=0.6)
    if hint:
        return f"no {what} named '{name}' in {where}; did you mean '{hint[0]}'?"
    listed = ", ".join(known.values()) or "none"
    return f"no {what} named '{name}' in {where} (declared: {listed})"


def _check_references(doc: Document) -> list[Diagnostic]:
    pipelines, destinations = _names(doc, "pipelines"), _names(doc, "destinations")
    out = []
    for i, item in _items(doc, "ae-titles"):
        refs = item.get("pipelines")
        for j, name in enumerate(refs if isinstance(refs, list) else []):
            if isinstance(name, str) and name.lower() not in pipelines:
                out.append(doc.diagnostic(("ae-titles", i, "pipelines", j), _unknown("pipeline", name, pipelines, "pipelines")))
    for i, item in _items(doc, "pipelines"):
        exports = item.get("export")
        for j, export in enumerate(exports if isinstance(exports, list) else []):
            if not isinstance(export, dict):
                continue
            path = ("pipelines", i, "export", j)
            targets = export.get("destinations")
            if export.get("agent") == "ClaraSCU" and not targets:
                out.append(doc.diagnostic(path, "agent ClaraSCU needs `destinations` (names from destinations)"))
            if export.get("agent") == "renderserver" and targets:
                out.append(doc.diagnostic(path + ("destinations",), "agent renderserver publishes to the viewer "
                                                                   "and takes no destinations", on_key=True))
                continue
            for k, name in enumerate(targets if isinstance(targets, list) else []):
                if isinstance(name, str) and name.lower() not in destinations:
                    out.append(doc.diagnostic(path + ("destinations", k),
                                              _unknown("destination", name, destinations, "destinations")))
    return out


def _check_ports(doc: Document) -> list[Diagnostic]:
    """Locally every service listens on the same machine, so their ports must differ."""
    target = doc.data.get("target")
    if isinstance(target, dict) and target.get("type") == "kubernetes":
        return []
    services = merge_defaults(doc.data.get("services") if isinstance(doc.data.get("services"), dict) else {},
                              SERVICE_DEFAULTS)
    used: dict[int, tuple] = {}
    out = []
    for path, service in SERVICE_PORTS:
        section = services.get(service)
        if not isinstance(section, dict) or section.get("enabled") is False:
            continue
        port = section
        for key in path[2:]:                      # below the service: "port", "tls" → "port"
            port = port.get(key) if isinstance(port, dict) else None
        if not isinstance(port, int):
            continue
        if port in used:
            out.append(doc.diagnostic(path, f"port {port} is already used by {path_to_str(used[port])}"))
        else:
            used[port] = path
    return out


# --- pipelines -------------------------------------------------------------------------------

def _load_pipelines(doc: Document, root: Path, outside: set[tuple]
                    ) -> tuple[dict[int, tuple[Path, str, Document]], list[Diagnostic]]:
    loaded: dict[int, tuple[Path, str, Document]] = {}
    problems: list[Diagnostic] = []
    models = _names(doc, "models")
    destinations = _names(doc, "destinations")
    for i, item in _items(doc, "pipelines"):
        file = item.get("file")
        if not isinstance(file, str) or not file or ("pipelines", i, "file") in outside:
            continue
        path = root / file
        if not path.is_file():
            problems.append(doc.diagnostic(("pipelines", i, "file"),
                                           f"pipeline file {file} not found" if not path.exists()
                                           else f"pipeline file {file} is not a file"))
            continue
        source = doc.beside(file)
        try:
            pdoc = parse_file(path, source)
        except ProjectError as exc:
            problems += exc.diagnostics
            continue
        text = path.read_text(encoding="utf-8-sig")
        found = check_pipeline(pdoc)
        found += _check_pipeline_in_project(pdoc, models, destinations, doc.source)
        problems += found
        if not found:
            loaded[i] = (path.resolve(), text, pdoc)
    return loaded, problems


def _check_pipeline_in_project(pdoc: Document, models: dict[str, str], destinations: dict[str, str],
                               project_file: str) -> list[Diagnostic]:
    """References from a pipeline file into the project: models, register-results destinations."""
    out = []
    ops = pdoc.data.get("operators")
    for i, op in enumerate(ops if isinstance(ops, list) else []):
        if not isinstance(op, dict):
            continue
        refs = op.get("models")
        for j, ref in enumerate(refs if isinstance(refs, list) else []):
            name = ref.get("name") if isinstance(ref, dict) else None
            if isinstance(name, str) and name.lower() not in models:
                out.append(pdoc.diagnostic(("operators", i, "models", j, "name"),
                                           _unknown("model", name, models, f"the models of {project_file}")))
        out += _check_register_results(pdoc, i, op, destinations, project_file)
    return out


def _check_register_results(pdoc: Document, i: int, op: dict[str, Any], destinations: dict[str, str],
                            project_file: str) -> list[Diagnostic]:
    """`register-results --agent ClaraSCU --data '["pacs"]'`: each destination must be declared."""
    container = op.get("container")
    command = container.get("command") if isinstance(container, dict) else None
    if not isinstance(command, list):
        return []
    args = [str(a) for a in command]
    if "--agent" not in args or "--data" not in args:
        return []
    agent_at, data_at = args.index("--agent") + 1, args.index("--data") + 1
    if agent_at >= len(args) or data_at >= len(args) or args[agent_at] != "ClaraSCU" or "${{" in args[data_at]:
        return []
    path = ("operators", i, "container", "command", data_at)
    try:
        names = json.loads(args[data_at])
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return [pdoc.diagnostic(path, "--data must be a JSON list of destination names, e.g. '[\"pacs\"]'")]
    return [pdoc.diagnostic(path, _unknown("destination", n, destinations, f"the destinations of {project_file}"))
            for n in names if n.lower() not in destinations]


# --- typed values ----------------------------------------------------------------------------

def _with_secrets(value: Any, secrets: dict[tuple, Secret], path: tuple) -> Any:
    if path in secrets:
        return secrets[path]
    if isinstance(value, dict):
        return {k: _with_secrets(v, secrets, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_secrets(v, secrets, path + (n,)) for n, v in enumerate(value)]
    return value


def _resolve_service_files(data: dict[str, Any], root: Path) -> None:
    """Certificate files (DICOM TLS, audit syslog) are named relative to the project file; the
    platform runs elsewhere."""
    for *section, key in SERVICE_FILES:
        values: Any = data
        for part in section:
            values = values.get(part) if isinstance(values, dict) else None
        if isinstance(values, dict) and isinstance(values.get(key), str):
            values[key] = str((root / values[key]).resolve())


def _lifecycle(item: dict[str, Any]) -> Lifecycle:
    return Lifecycle(protect=bool((item.get("lifecycle") or {}).get("protect", False)))


def _build(path: Path, doc: Document, root: Path, secrets: dict[tuple, Secret],
           pipelines: dict[int, tuple[Path, str, Document]]) -> Project:
    data = _with_secrets(copy.deepcopy(doc.data), secrets, ())
    target_data = merge_defaults(data.get("target") or {}, TARGET_DEFAULTS)
    state_dir = target_data["local"]["state-dir"]
    if isinstance(state_dir, str):
        target_data["local"]["state-dir"] = str((root / state_dir).resolve())
    target = Target(type=target_data["type"], local=target_data["local"], kubernetes=target_data["kubernetes"])
    _resolve_service_files(data, root)
    project = Project(name=data["name"], path=path, target=target,
                      services=merge_defaults(data.get("services") or {}, SERVICE_DEFAULTS))
    for i, item in enumerate(data.get("models") or []):
        project.models.append(ModelRef(name=item["name"], path=(root / item["path"]).resolve(),
                                       lifecycle=_lifecycle(item), where=doc.at(("models", i))))
    for i, item in enumerate(data.get("pipelines") or []):
        file, text, pdoc = pipelines[i]
        export = [{"agent": e["agent"], "destinations": list(e.get("destinations") or [])}
                  for e in item.get("export") or []]
        project.pipelines.append(PipelineRef(name=item["name"], file=file, definition_text=text,
                                             definition=with_defaults(pdoc.data), export=export,
                                             lifecycle=_lifecycle(item), where=doc.at(("pipelines", i))))
    for i, item in enumerate(data.get("ae-titles") or []):
        project.ae_titles.append(AETitleRef(ae_title=item["ae-title"], pipelines=list(item["pipelines"]),
                                            group_by=item.get("group-by", "0020,000D").upper(),
                                            timeout=float(item.get("timeout", 5)),
                                            priority=item.get("priority", "normal"), where=doc.at(("ae-titles", i))))
    for i, item in enumerate(data.get("sources") or []):
        project.sources.append(SourceRef(name=item["name"], ae_title=item["ae-title"], host=item["host"],
                                         where=doc.at(("sources", i))))
    for i, item in enumerate(data.get("destinations") or []):
        project.destinations.append(DestinationRef(name=item["name"], ae_title=item["ae-title"], host=item["host"],
                                                   port=item["port"], where=doc.at(("destinations", i)),
                                                   tls=bool(item.get("tls", False))))
    return project
