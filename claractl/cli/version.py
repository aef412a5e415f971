"""`claractl version`."""

from __future__ import annotations

import platform
import sys

import typer

import claractl


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the claractl version."""
        typer.echo(f"claractl {claractl.__version__} (Python {platform.python_version()}, {sys.platform})")
