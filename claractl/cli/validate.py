"""`claractl validate` and `claractl schema`."""

from __future__ import annotations

import json
from enum import Enum
from typing import Optional

import typer

from claractl import resources
from claractl.project import DEFAULT_FILE


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class SchemaKind(str, Enum):
    project = "project"
    pipeline = "pipeline"
    operator = "operator"


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        file: str = typer.Option(DEFAULT_FILE, "-f", "--file", metavar="FILE", help="Project file, or a single Clara pipeline file."),
        output: OutputFormat = typer.Option(OutputFormat.text, "-o", "--output", help="text, or json for CI annotations."),
    ) -> None:
        """Check the project file and every pipeline file it names; print every problem.

        Exit 0 with a one-line summary when valid; exit 1 with each problem as FILE:LINE:COL: key.path: message, sorted by position. Reads files only; nothing is contacted.
        """
        from claractl.project.check import check_file

        result = check_file(file)
        if output is OutputFormat.json:
            typer.echo(json.dumps({
                "valid": result.ok, "file": result.file, "kind": result.kind,
                "summary": result.summary or None,
                "errors": [{"file": d.location.file, "line": d.location.line, "column": d.location.column,
                            "key_path": d.key_path, "message": d.message} for d in result.diagnostics],
            }, indent=2))
        elif result.ok:
            typer.echo(result.summary)
        else:
            for diagnostic in result.diagnostics:
                typer.echo(str(diagnostic))
            count = len(result.diagnostics)
            typer.echo(f"{count} problem{'s' if count != 1 else ''} found in {result.file}", err=True)
        raise typer.Exit(0 if result.ok else 1)

    @app.command()
    def schema(
        kind: SchemaKind = typer.Argument(SchemaKind.project, help="Which schema."),
        path: bool = typer.Option(False, "--path", help="Print the schema file's path instead of its content."),
    ) -> None:
        """Print a JSON Schema (draft 2020-12) of the project file, a pipeline, or an operator.

        Editors validate as you type with it: generated files start with `# yaml-language-server: $schema=...`.
        """
        schema_file = resources.schema_path(kind.value)
        typer.echo(str(schema_file) if path else schema_file.read_text(encoding="utf-8").rstrip("\n"))
