"""The validated project, as typed values. `claractl.project.load_project()` returns a `Project`.

This is what `plan` (desired state) and the targets consume; keys are the file's keys in
snake_case. Every object keeps `where` (file, line, column) so later errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Location:
    file: str
    line: int          # 1-based
    column: int        # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the input: printed as `FILE:LINE:COL: key.path: message`."""

    location: Location
    key_path: str      # e.g. "pipelines[0].file" or "operators[2].input[0].from"
    message: str

    def __str__(self) -> str:
        text = f"{self.location}: {self.key_path}: {self.message}" if self.key_path else f"{self.location}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """Control and separator characters escaped (a newline in a YAML key, a CR in a quoted config
    line), so one problem is always one line for editors and CI annotations to parse."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class ProjectError(Exception):
    """The project (or a pipeline file) is invalid; `diagnostics` holds every problem, sorted by position."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.location.file, d.location.line, d.location.column))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class Lifecycle:
    protect: bool = False


@dataclass
class Secret:
    """A value that came from `${env:NAME}`: rendered as "(sensitive)" everywhere but where it is used."""

    env: str
    value: str

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})"

    def __str__(self) -> str:
        return "(sensitive)"


@dataclass
class Target:
    type: str = "local"                                   # local | kubernetes
    local: dict[str, Any] = field(default_factory=lambda: {"state-dir": ".clara"})
    kubernetes: dict[str, Any] = field(default_factory=lambda: {"context": "", "namespace": "clara", "storage-class": ""})


@dataclass
class ModelRef:
    name: str
    path: Path                                            # absolute model directory
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    where: Location | None = None


@dataclass
class PipelineRef:
    name: str
    file: Path                                            # absolute path of the PDL file
    definition_text: str                                  # the file's text, as stored on the platform
    definition: dict[str, Any]                            # parsed, validated PDL
    export: list[dict[str, Any]] = field(default_factory=list)   # [{agent, destinations: [names]}]
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    where: Location | None = None


@dataclass
class AETitleRef:
    ae_title: str
    pipelines: list[str]
    group_by: str = "0020,000D"
    timeout: float = 5.0
    priority: str = "normal"
    where: Location | None = None


@dataclass
class SourceRef:
    name: str
    ae_title: str
    host: str
    where: Location | None = None


@dataclass
class DestinationRef:
    name: str
    ae_title: str
    host: str
    port: int
    where: Location | None = None
    tls: bool = False                    # DICOM over TLS


@dataclass
class Project:
    name: str
    path: Path                                            # the project file
    target: Target
    services: dict[str, dict[str, Any]]                   # as in the file, defaults filled in; Secret values kept as Secret
    models: list[ModelRef] = field(default_factory=list)
    pipelines: list[PipelineRef] = field(default_factory=list)
    ae_titles: list[AETitleRef] = field(default_factory=list)
    sources: list[SourceRef] = field(default_factory=list)
    destinations: list[DestinationRef] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.path.parent
