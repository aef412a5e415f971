"""`claractl init`: a new project from a blueprint."""

from __future__ import annotations

import os
from typing import Optional

import typer

from claractl.project.blueprints import DEFAULT_BLUEPRINT, BlueprintError, list_blueprints, render_blueprint


def register(app: typer.Typer) -> None:
    @app.command()
    def init(
        directory: str = typer.Argument(".", metavar="DIR", help="Where to create the project (created if missing)."),
        blueprint: str = typer.Option(DEFAULT_BLUEPRINT, "-b", "--blueprint", metavar="NAME", help="Blueprint to start from (see --list)."),
        name: Optional[str] = typer.Option(None, "--name", metavar="NAME", help="Project name (default: from the directory name)."),
        list_: bool = typer.Option(False, "--list", help="List the blueprints and exit."),
        force: bool = typer.Option(False, "--force", help="Overwrite files that already exist."),
    ) -> None:
        """Create a project (clara.yaml, pipelines, models) from a blueprint.

        Existing files are never overwritten unless --force is given. The result is valid as generated: run `claractl validate` in DIR, then `claractl plan`.

        \b
        Examples:
          claractl init --list                   # the blueprints
          claractl init my-project --blueprint ct-segmentation
          claractl init . --name hospital-a      # the minimal blueprint, here
        """
        if list_:
            for item in list_blueprints():
                typer.echo(f"{item.name:<18} {item.description}")
            return
        try:
            written = render_blueprint(blueprint, directory, force=force, project_name=name)
        except BlueprintError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1)
        root = os.path.abspath(directory)
        typer.echo(f"Created project in {root} from blueprint '{blueprint}':")
        for path in written:
            typer.echo(f"  {os.path.relpath(path, root)}")
        typer.echo(f"Next: claractl -C {directory} validate && claractl -C {directory} plan")
