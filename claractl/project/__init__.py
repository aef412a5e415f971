"""The project model: load and validate `clara.yaml` and Clara pipeline definitions.

Public surface:
- `load_project(path="clara.yaml") -> Project` (raises `ProjectError` with every problem)
- `parse_pipeline(text, source="<api>") -> dict` (one PDL text, no files needed)
- `resolve_placeholders(definition, variables) -> dict` (`${{ name }}` at job start)

Names are imported on first use (PEP 562): a CLI command that only needs DEFAULT_FILE, or the
dataclasses of `claractl.project.model`, does not load YAML and JSON Schema.
"""

from __future__ import annotations

import importlib
from typing import Any

DEFAULT_FILE = "clara.yaml"

_EXPORTS = {
    "load_project": "loader", "parse_pipeline": "pipeline",
    "resolve_placeholders": "placeholders", "PlaceholderError": "placeholders",
    **dict.fromkeys(("AETitleRef", "DestinationRef", "Diagnostic", "Lifecycle", "Location", "ModelRef",
                     "PipelineRef", "Project", "ProjectError", "Secret", "SourceRef", "Target"), "model"),
}

__all__ = ["DEFAULT_FILE", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
