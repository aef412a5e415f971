"""The `claractl` command: global options, then one module per command group.

Each module in `claractl.cli` exposes `register(app)`; this file only wires them together.
The CLI parses and prints; all logic lives in the package.

Every command module is imported on every run (typer builds the whole command tree), so a
module imports at its top only what registering its commands needs: typer, claractl.cli.console
and light constants. The platform client, the runtime, YAML, JSON Schema, rich tables are
imported inside the command functions (tests/cli/test_startup_imports.py checks this for every
module listed here). Help is click's plain format: as fast as the rest, and reads well in logs.
"""

from __future__ import annotations

import importlib
import os
from typing import Optional

import typer

from claractl.cli import console as cli_console
from claractl.cli.helpformat import HelpNamedGroup

# Command modules, in the order they appear in `claractl --help`.
COMMAND_MODULES = [
    "validate",      # validate, schema
    "init",          # init
    "plan",          # plan, apply, destroy, show, force-unlock
    "render",        # render (kubernetes manifests for GitOps)
    "platform",      # platform start|stop|status|logs|serve
    "jobs",          # jobs …, pipelines …
    "payloads",      # payloads create|upload|list|download|delete
    "models",        # models list|show|delete
    "dicom",         # dicom echo|send|status
    "audit",         # audit (the platform's audit trail)
    "version",       # version
]

app = typer.Typer(
    name="claractl",
    cls=HelpNamedGroup,
    help="Declarative control of a medical imaging AI platform: plan and apply one project file.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,        # plain help for every command: typer's rich panels cost ~0.08 s per --help
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main(
    directory: Optional[str] = typer.Option(
        None, "-C", "--directory", metavar="DIR", help="Run as if claractl was started in DIR."
    ),
    no_color: bool = typer.Option(False, "--no-color", help="Plain output without colour (also NO_COLOR)."),
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="More detail; repeat for debug logs."),
) -> None:
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise typer.BadParameter(f"cannot change to {directory}: {exc.strerror}", param_hint="-C")
    cli_console.configure(no_color=no_color, verbose=verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f"claractl.cli.{_name}").register(app)


def run() -> None:
    app()
