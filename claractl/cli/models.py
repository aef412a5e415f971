"""`claractl models …`: the models on the platform (list, show, delete). Uploads stay declarative:
a project's `models:` and `claractl apply`."""

from __future__ import annotations

import json
from typing import Optional

import typer

from claractl.cli import console as cli_console
from claractl.cli.jobs import ApiOpt, Output, OutputOpt, StateDirOpt, _call, _client, _json, _table, _when

models_app = typer.Typer(help="Models on the platform (uploads: the project's models and `claractl apply`).",
                         no_args_is_help=True)


@models_app.command("list")
def list_models(api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt) -> None:
    """Models: name, Clara id, platform, versions, load state, owner."""
    with _client(api, state_dir) as c:
        models = _call(c.list_models)
    if output is Output.json:
        return _json(models)
    table = _table()
    table.add_column("NAME", no_wrap=True)
    table.add_column("CLARA ID", min_width=32, no_wrap=True)       # what Clara's ModelsClient takes
    for col in ("PLATFORM", "VERSIONS", "STATE", "OWNER", "UPDATED"):
        table.add_column(col)
    for m in models:
        table.add_row(m["name"], m["clara_id"], m["platform"] or "-", ",".join(map(str, m["versions"])) or "-",
                      m["state"], m["owner"] or "(by hand)", _when(m["updated_at"]))
    cli_console.console.print(table)
    if not models:
        cli_console.console.print("no models")


@models_app.command()
def show(name: str, api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt) -> None:
    """One model: its digest, state (and why), metadata and parsed config.pbtxt."""
    with _client(api, state_dir) as c:
        m = _call(c.get_model, name)
    if output is Output.json:
        return _json(m)
    out = cli_console.console
    out.print(f"[bold]{m['name']}[/bold]  Clara id {m['clara_id']}  owner {m['owner'] or '(by hand)'}", soft_wrap=True)
    out.print(f"state {m['state']}  versions {','.join(map(str, m['versions'])) or '-'}  digest {m['digest']}",
              highlight=False, soft_wrap=True)
    if m.get("message"):
        out.print(f"message: {m['message']}", markup=False, highlight=False)
    for key, value in (m.get("metadata") or {}).items():
        out.print(f"metadata {key}: {value}", markup=False, highlight=False)
    typer.echo(json.dumps(m["config"], indent=2))


@models_app.command()
def delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
) -> None:
    """Delete a model (unloaded, files removed). A project that declares it puts it back on apply."""
    if not yes and not typer.confirm(f"delete model {name}?"):
        raise typer.Exit(1)
    with _client(api, state_dir) as c:
        _call(c.delete_model, name)
    cli_console.console.print(f"model {name} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
