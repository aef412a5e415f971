"""`claractl payloads …`: reusable payloads a Clara user keeps inputs in (create, upload, list,
download, delete). A job takes one as input with `jobs create --payload ID` (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from claractl.cli import console as cli_console
from claractl.cli.jobs import (
    ApiOpt, Output, OutputOpt, StateDirOpt, _call, _client, _json, _parse_vars, _table, _when,
)

payloads_app = typer.Typer(help="Payloads: folders of files jobs take as input (Clara's payloads).",
                           no_args_is_help=True)


@payloads_app.command()
def create(
    meta: list[str] = typer.Option([], "--meta", metavar="KEY=VALUE", help="Metadata (repeatable)."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """Create an empty reusable payload; prints its id."""
    with _client(api, state_dir) as c:
        payload = _call(c.create_payload, _parse_vars(meta, "--meta"))
    if output is Output.json:
        return _json(payload)
    typer.echo(payload["id"])


@payloads_app.command()
def upload(
    payload_id: str,
    paths: list[Path] = typer.Argument(..., metavar="PATH...", help="Files or directories (kept with their relative paths)."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """Upload files into the payload's input/ (streamed, any size)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(f"{', '.join(missing)} does not exist", param_hint="PATH")
    done: list[dict] = []
    with _client(api, state_dir) as c:
        for path in paths:
            if path.is_dir():
                done += _call(c.upload_input_dir, payload_id, path)
            else:
                done.append(_call(c.upload_payload_file, payload_id, f"input/{path.name}", path))
    if output is Output.json:
        return _json(done)
    cli_console.console.print(f"{len(done)} file(s), {sum(f['size'] for f in done)} bytes into payload {payload_id}")


@payloads_app.command("list")
def list_payloads(
    all_types: bool = typer.Option(False, "--all", help="Also the payloads of jobs (default: reusable ones)."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """Payloads, newest first: id (and Clara's spelling), type, the job it belongs to, metadata."""
    with _client(api, state_dir) as c:
        payloads = _call(c.list_payloads, type=None if all_types else "reusable")
    if output is Output.json:
        return _json(payloads)
    table = _table()
    table.add_column("ID", min_width=36, no_wrap=True)
    table.add_column("CLARA ID", min_width=32, no_wrap=True)
    for col in ("TYPE", "JOB", "CREATED", "METADATA"):
        table.add_column(col)
    for p in payloads:
        meta = ", ".join(f"{k}={v}" for k, v in p["metadata"].items()) or "-"
        table.add_row(p["id"], p["clara_id"], p["type"], p["job_id"] or "-", _when(p["created_at"]), meta)
    cli_console.console.print(table)
    if not payloads:
        cli_console.console.print("no payloads")


@payloads_app.command()
def download(
    payload_id: str,
    path: Optional[str] = typer.Argument(None, help="One file (relative to the payload, e.g. input/a.dcm); default all."),
    dest: Path = typer.Option(Path("."), "--dest", metavar="DIR", help="Files go to DEST/<payload path>."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
) -> None:
    """Download one file or every file of a payload."""
    with _client(api, state_dir) as c:
        files = [path] if path else [f["path"] for f in _call(c.list_payload_files, payload_id)]
        for rel in files:
            _call(c.download_payload_file, payload_id, rel, dest / rel)
    cli_console.console.print(f"{len(files)} file(s) in {dest}")


@payloads_app.command()
def delete(
    payload_id: str,
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
) -> None:
    """Delete a payload's files for good (refused while a job using it as its own has not stopped)."""
    with _client(api, state_dir) as c:
        _call(c.delete_payload, payload_id)
    cli_console.console.print(f"payload {payload_id} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(payloads_app, name="payloads")
