"""The project model: load and validate `clara.yaml` and Clara pipeline definitions.

Public surface:
- `load_project(path="clara.yaml") -> Project` (raises `ProjectError` with every problem)
- `parse_pipeline(text, source="<api>") -> dict` (one PDL text, no files needed)
- `resolve_placeholders(definition, variables) -> dict` (`${{ name }}` at job start)
"""

from claractl.project.loader import DEFAULT_FILE, load_project
from claractl.project.model import (
    AETitleRef, DestinationRef, Diagnostic, Lifecycle, Location, ModelRef, PipelineRef, Project,
    ProjectError, Secret, SourceRef, Target,
)
from claractl.project.pipeline import parse_pipeline
from claractl.project.placeholders import PlaceholderError, resolve_placeholders

__all__ = [
    "DEFAULT_FILE", "load_project", "parse_pipeline", "resolve_placeholders", "PlaceholderError",
    "AETitleRef", "DestinationRef", "Diagnostic", "Lifecycle", "Location", "ModelRef", "PipelineRef",
    "Project", "ProjectError", "Secret", "SourceRef", "Target",
]
