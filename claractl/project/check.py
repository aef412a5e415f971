"""What `claractl validate` checks: a project file, or a single pipeline file on its own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from claractl.project.loader import load_project
from claractl.project.model import Diagnostic, ProjectError
from claractl.project.pipeline import check_pipeline
from claractl.project.yamlsource import parse_file


@dataclass
class CheckResult:
    file: str
    kind: str                       # "project" | "pipeline"
    diagnostics: list[Diagnostic]
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.diagnostics


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_file(path: str | os.PathLike[str]) -> CheckResult:
    """Validate a project file, or a Clara pipeline file (top-level `api-version`) by itself."""
    source = str(path)
    try:
        doc = parse_file(path, source)
    except ProjectError as exc:
        return CheckResult(source, "project", exc.diagnostics)
    if "api-version" in doc.data and "apiVersion" not in doc.data:
        problems = check_pipeline(doc)
        operators = doc.data.get("operators")
        count = len(operators) if isinstance(operators, list) else 0
        summary = f"{source}: pipeline '{doc.data.get('name')}' is valid ({_plural(count, 'operator')})"
        return CheckResult(source, "pipeline", sorted_diagnostics(problems), "" if problems else summary)
    try:
        project = load_project(Path(path))
    except ProjectError as exc:
        return CheckResult(source, "project", exc.diagnostics)
    operators = sum(len(p.definition.get("operators", [])) for p in project.pipelines)
    parts = [_plural(len(project.models), "model"),
             f"{_plural(len(project.pipelines), 'pipeline')} ({_plural(operators, 'operator')})",
             _plural(len(project.ae_titles), "AE title"), _plural(len(project.sources), "source"),
             _plural(len(project.destinations), "destination")]
    summary = f"{source}: project '{project.name}' is valid: {', '.join(parts)}; target {project.target.type}"
    return CheckResult(source, "project", [], summary)


def sorted_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return ProjectError(diagnostics).diagnostics if diagnostics else []
