"""`claractl platform serve|start|stop|status|logs`: run and manage the local platform process."""

from __future__ import annotations

import json
import time
from enum import Enum
from typing import Optional

import typer

from claractl.cli import console as cli_console
from claractl.platform import process
from claractl.platform.config import DEFAULT_STATE_DIR
from claractl.platform.errors import PlatformError

platform_app = typer.Typer(help="Run the platform (API, engine, DICOM adapter, inference) on this machine.",
                           no_args_is_help=True)

StateDir = typer.Option(DEFAULT_STATE_DIR, "--state-dir", metavar="DIR", help="Platform state: database, payloads, models, logs.")


class Output(str, Enum):
    text = "text"
    json = "json"


def _fail(message: str) -> None:
    cli_console.err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(1)


def _print_status(status: dict, output: Output) -> None:
    if output is Output.json:
        typer.echo(json.dumps(status, indent=2, default=str))
        return
    out = cli_console.console
    if not status["running"]:
        out.print(f"platform: [bold]stopped[/bold] (state dir {status['state_dir']})")
        return
    from rich.table import Table

    ready = "[green]ready[/green]" if status.get("ready") else "[yellow]not ready[/yellow]"
    out.print(f"platform: [bold]running[/bold], {ready} (pid {status['pid']}, state dir {status['state_dir']})")
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("ENDPOINT")
    table.add_column("ADDRESS")
    for name, address in (status.get("endpoints") or {}).items():
        table.add_row(name, address)
    out.print(table)
    components = status.get("components") or {}
    if components:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("COMPONENT")
        table.add_column("READY")
        for name, st in components.items():
            table.add_row(name, "yes" if st.get("ready") else f"no {st.get('message', '')}".strip())
        out.print(table)
    if status.get("message"):
        out.print(status["message"])


@platform_app.command()
def serve(
    state_dir: str = StateDir,
    config: Optional[str] = typer.Option(None, "--config", metavar="FILE", help="Platform settings (JSON); default <state-dir>/platform.json."),
    roles: Optional[str] = typer.Option(None, "--roles", metavar="ROLES",
                                        help="Comma-separated parts to run: api, engine, dicom (default all)."),
    replica: Optional[str] = typer.Option(None, "--replica", metavar="NAME",
                                          help="This process's name where several share the state (the pod's)."),
) -> None:
    """Run the platform in the foreground until SIGTERM or Ctrl-C (what a container runs)."""
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        process.serve(state_dir, config, process.parse_roles(roles), replica)
    except PlatformError as exc:
        _fail(str(exc))


@platform_app.command()
def start(
    state_dir: str = StateDir,
    config: Optional[str] = typer.Option(None, "--config", metavar="FILE", help="Platform settings (JSON); default <state-dir>/platform.json."),
    timeout: float = typer.Option(60.0, "--timeout", metavar="SECONDS", help="Seconds to wait for /health/ready."),
    output: Output = typer.Option(Output.text, "-o", "--output"),
) -> None:
    """Start the platform in the background and wait until it is ready; print its endpoints."""
    try:
        status = process.start_background(state_dir, config, timeout=timeout)
    except PlatformError as exc:
        _fail(str(exc))
    if output is Output.text and status.get("already_running"):
        cli_console.console.print("the platform was already running")
    _print_status(status, output)


@platform_app.command()
def stop(
    state_dir: str = StateDir,
    timeout: float = typer.Option(30.0, "--timeout", metavar="SECONDS", help="Seconds of graceful shutdown before it is killed."),
) -> None:
    """Stop the background platform: SIGTERM, then SIGKILL after --timeout."""
    result = process.stop_background(state_dir, timeout=timeout)
    if not result["was_running"]:
        cli_console.console.print("the platform is not running")
    elif result["killed"]:
        cli_console.console.print(f"platform (pid {result['pid']}) did not stop within {timeout:g} s: killed")
    else:
        cli_console.console.print(f"platform (pid {result['pid']}) stopped")


@platform_app.command()
def status(state_dir: str = StateDir, output: Output = typer.Option(Output.text, "-o", "--output")) -> None:
    """Show whether the platform runs, its health per component, and its endpoints (exit 1 when stopped)."""
    st = process.platform_status(state_dir)
    _print_status(st, output)
    raise typer.Exit(0 if st["running"] else 1)


@platform_app.command()
def logs(
    state_dir: str = StateDir,
    lines: int = typer.Option(50, "-n", "--lines", metavar="N", help="How many lines from the end."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines until Ctrl-C."),
) -> None:
    """Print the platform's log (<state-dir>/logs/platform.log)."""
    path = process.log_file(state_dir)
    if not path.exists():
        _fail(f"no platform log at {path}; the platform was never started with this state dir")
    typer.echo(process.tail(path, lines))
    if follow:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            try:
                while True:
                    chunk = fh.read()
                    if chunk:
                        typer.echo(chunk.decode(errors="replace"), nl=False)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                pass


def register(app: typer.Typer) -> None:
    app.add_typer(platform_app, name="platform")
