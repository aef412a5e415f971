"""`claractl jobs …` and `claractl pipelines …`: talk to the platform API (local by default)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from claractl.cli import console as cli_console
from claractl.platform.config import DEFAULT_STATE_DIR

if TYPE_CHECKING:      # the client (httpx) and rich tables load when a command runs, not for --help
    from rich.table import Table

    from claractl.platform.client import PlatformClient

jobs_app = typer.Typer(help="Jobs on the platform: list, inspect, logs, cancel, download results, create.",
                       no_args_is_help=True)
pipelines_app = typer.Typer(help="Pipelines registered on the platform.", no_args_is_help=True)


class Output(str, Enum):
    text = "text"
    json = "json"


ApiOpt = typer.Option(None, "--api", metavar="URL", envvar="CLARA_API_URL",
                      help="Platform API URL (default: the platform of the project here — clara.yaml, local or "
                           "kubernetes — else the local platform of --state-dir).")
StateDirOpt = typer.Option(DEFAULT_STATE_DIR, "--state-dir", metavar="DIR", help="Local platform state dir (for the default --api).")
OutputOpt = typer.Option(Output.text, "-o", "--output", help="text or json.")


def _client(api: Optional[str], state_dir: str) -> PlatformClient:
    from claractl.platform.client import PlatformClient

    if api:
        import os
        return PlatformClient(api, token=os.environ.get("CLARA_API_TOKEN"))
    if state_dir == DEFAULT_STATE_DIR and Path("clara.yaml").is_file():
        return _project_client(Path("clara.yaml"))
    return PlatformClient.for_state_dir(state_dir)


def _project_client(path: Path) -> PlatformClient:
    """The platform of the project in this directory, wherever its target runs it."""
    from claractl.plan import PlanError
    from claractl.project import load_project
    from claractl.project.model import ProjectError
    from claractl.targets import project_platform_client

    try:
        return project_platform_client(load_project(path))
    except ProjectError as exc:
        for d in exc.diagnostics:
            cli_console.err_console.print(f"[red]error:[/red] {d}", markup=True, highlight=False)
    except PlanError as exc:
        cli_console.err_console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
    raise typer.Exit(1)


def _call(fn, *args, **kw):
    from claractl.platform.client import ApiError

    try:
        return fn(*args, **kw)
    except ApiError as exc:
        cli_console.err_console.print(f"[red]error:[/red] {exc.detail}", markup=True, highlight=False)
        raise typer.Exit(1)


def _table(**options: Any) -> Table:
    from rich.table import Table

    return Table(header_style="bold", box=None, **options)


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _when(value: Optional[str]) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: Optional[str], stop: Optional[str]) -> str:
    if not start:
        return "-"
    end = datetime.fromisoformat(stop) if stop else datetime.now(timezone.utc)
    return f"{(end - datetime.fromisoformat(start)).total_seconds():.1f}s"


def _status(job: dict) -> str:
    colour = {"HEALTHY": "green", "FAULTED": "red", "CANCELED": "yellow", "EVICTED": "red",
              "TERMINATED": "red"}.get(job["status"], "white")
    return job["state"] if job["state"] != "STOPPED" else f"[{colour}]{job['status']}[/{colour}]"


# -- jobs ----------------------------------------------------------------------------------------
@jobs_app.command("list")
def list_jobs(
    state: Optional[str] = typer.Option(None, "--state", help="PENDING, RUNNING or STOPPED."),
    status: Optional[str] = typer.Option(None, "--status", help="HEALTHY, FAULTED, CANCELED, EVICTED, TERMINATED."),
    pipeline: Optional[str] = typer.Option(None, "--pipeline"),
    created_after: Optional[str] = typer.Option(None, "--created-after", metavar="TIME", help="ISO 8601 time."),
    limit: int = typer.Option(50, "--limit", metavar="N", help="At most N jobs."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """List jobs, newest first."""
    with _client(api, state_dir) as c:
        jobs = _call(c.list_jobs, state=state and state.upper(), status=status and status.upper(),
                     pipeline=pipeline, created_after=created_after, limit=limit)
    if output is Output.json:
        return _json(jobs)
    table = _table()
    table.add_column("ID", min_width=36, no_wrap=True)      # ids are what the other commands take
    for col in ("NAME", "PIPELINE", "PRIORITY", "STATE", "CREATED", "DURATION"):
        table.add_column(col)
    for j in jobs:
        table.add_row(j["id"], j["name"], j["pipeline"], j["priority"], _status(j), _when(j["created_at"]),
                      _duration(j["started_at"], j["stopped_at"]))
    cli_console.console.print(table)
    if not jobs:
        cli_console.console.print("no jobs")


@jobs_app.command()
def describe(job_id: str, api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt) -> None:
    """A job with its operators (status, times, exit code) and its export tasks."""
    with _client(api, state_dir) as c:
        job = _call(c.get_job, job_id)
        tasks = _call(c.list_export_tasks, job_id=job_id)
    if output is Output.json:
        return _json({**job, "export_tasks": tasks})
    out = cli_console.console
    out.print(f"[bold]{job['name']}[/bold]  {job['id']}  (Clara id {job['clara_id']})", soft_wrap=True)
    out.print(f"pipeline {job['pipeline']}  priority {job['priority']}  state {_status(job)}  attempts {job['attempts']}"
              f"  timeout {job['timeout']:g} s")
    out.print(f"created {_when(job['created_at'])}  started {_when(job['started_at'])}  "
              f"stopped {_when(job['stopped_at'])}  payload {job['payload_id']}")
    if job.get("input_payloads"):
        out.print(f"input from payload(s) {', '.join(job['input_payloads'])}")
    if job.get("message"):
        out.print(f"message: {job['message']}", highlight=False, markup=False)
    table = _table(title="operators", title_justify="left")
    for col in ("OPERATOR", "STATE", "EXIT", "STARTED", "DURATION", "MESSAGE"):
        table.add_column(col)
    for o in job["operators"]:
        table.add_row(o["name"], _status(o), "-" if o["exit_code"] is None else str(o["exit_code"]),
                      _when(o["started_at"]), _duration(o["started_at"], o["stopped_at"]), o.get("message") or "")
    out.print(table)
    if tasks:
        table = _table(title="export tasks", title_justify="left")
        for col in ("AGENT", "DESTINATION", "STATE", "ATTEMPTS", "FILES", "MESSAGE"):
            table.add_column(col)
        for t in tasks:
            table.add_row(t["agent"], t["destination"] or "-", t["state"], f"{t['attempts']}/{t['max_attempts']}",
                          str(len(t["files"])), t.get("message") or "")
        out.print(table)


@jobs_app.command()
def logs(
    job_id: str,
    operator: Optional[str] = typer.Argument(None, help="One operator; default all, in order."),
    tail: Optional[int] = typer.Option(None, "--tail", metavar="N", help="Only the last N lines of each log."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
) -> None:
    """Print operator logs of a job."""
    with _client(api, state_dir) as c:
        names = [operator] if operator else [o["name"] for o in _call(c.get_job, job_id)["operators"]]
        for name in names:
            text = _call(c.get_job_logs, job_id, name, tail=tail)
            if not operator:
                typer.echo(f"==> {name} <==")
            typer.echo(text, nl=not text.endswith("\n"))


@jobs_app.command()
def cancel(job_id: str, api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt) -> None:
    """Cancel a job: queued ones stop at once; running ones have their operators' processes killed."""
    with _client(api, state_dir) as c:
        job = _call(c.cancel_job, job_id)
    if output is Output.json:
        return _json(job)
    verb = "canceled" if job["state"] == "STOPPED" else "cancel requested"
    cli_console.console.print(f"job {job_id}: {verb}")


@jobs_app.command()
def download(
    job_id: str,
    dest: Path = typer.Option(Path("."), "--dest", metavar="DIR", help="Files go to DEST/<job-id>/<payload path>."),
    include_input: bool = typer.Option(False, "--include-input", help="Also download the job's input/."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
) -> None:
    """Download a job's results (operator outputs) from its payload."""
    with _client(api, state_dir) as c:
        job = _call(c.get_job, job_id)
        files = [f for f in _call(c.list_payload_files, job["payload_id"])
                 if include_input or not f["path"].startswith("input/")]
        root = dest / job_id
        for f in files:
            _call(c.download_payload_file, job["payload_id"], f["path"], root / f["path"])
    cli_console.console.print(f"{len(files)} file(s) in {root}")


def _parse_vars(values: list[str], option: str = "--var") -> dict[str, str]:
    """NAME=VALUE options (--var, --meta) as a dict."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=option)
        out[key] = value
    return out


@jobs_app.command()
def create(
    pipeline: str,
    input_path: Optional[Path] = typer.Option(None, "--input", "-i", metavar="PATH", help="File or directory uploaded as the job input."),
    payloads: list[str] = typer.Option([], "--payload", metavar="ID",
                                       help="A payload whose input/ the job takes, read-only (repeatable)."),
    name: Optional[str] = typer.Option(None, "--name"),
    priority: str = typer.Option("normal", "--priority", help="lower, normal, higher or immediate."),
    var: list[str] = typer.Option([], "--var", metavar="NAME=VALUE", help="NAME=VALUE for ${{ NAME }} in the pipeline (repeatable)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", metavar="SECONDS", min=0.001,
                                            help="Seconds the job may run (default: the platform's job-timeout)."),
    no_start: bool = typer.Option(False, "--no-start", help="Create only; start later through the API."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the job stops; exit 1 unless HEALTHY."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """Create a job of PIPELINE with local files as input, and start it."""
    variables = _parse_vars(var)
    if input_path is not None and not input_path.exists():
        raise typer.BadParameter(f"{input_path} does not exist", param_hint="--input")
    with _client(api, state_dir) as c:
        # As Clara does it: the job comes with its own payload; its input is uploaded there.
        job = _call(c.create_job, pipeline, name=name, priority=priority, timeout=timeout, input_payloads=payloads)
        if input_path is not None and input_path.is_dir():
            _call(c.upload_input_dir, job["payload_id"], input_path)
        elif input_path is not None:
            _call(c.upload_payload_file, job["payload_id"], f"input/{input_path.name}", input_path)
        if not no_start:
            job = _call(c.start_job, job["id"], variables)
        if wait:
            job = _call(c.wait_for_job, job["id"], timeout=86400)
    if output is Output.json:
        _json(job)
    else:
        cli_console.console.print(f"job {job['id']} ({job['name']}): {_status(job)}")
        if job.get("message"):
            cli_console.console.print(job["message"], markup=False, highlight=False)
    if wait and job["status"] != "HEALTHY":
        raise typer.Exit(1)


# -- pipelines -----------------------------------------------------------------------------------
@pipelines_app.command("list")
def list_pipelines(api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt) -> None:
    """Pipelines on the platform."""
    with _client(api, state_dir) as c:
        pipelines = _call(c.list_pipelines)
    if output is Output.json:
        return _json(pipelines)
    table = _table()
    for col in ("NAME", "OPERATORS", "EXPORT", "OWNER", "UPDATED"):
        table.add_column(col)
    for p in pipelines:
        ops = ", ".join(o["name"] for o in p["definition"].get("operators", []))
        export = ", ".join(f"{e['agent']}→{','.join(e.get('destinations') or []) or '-'}" for e in p["export"]) or "-"
        table.add_row(p["name"], ops, export, p["owner"] or "(by hand)", _when(p["updated_at"]))
    cli_console.console.print(table)
    if not pipelines:
        cli_console.console.print("no pipelines")


@pipelines_app.command("describe")
def describe_pipeline(name: str, api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt,
                      output: Output = OutputOpt) -> None:
    """A pipeline's definition as stored (PDL text), its export and its owner."""
    with _client(api, state_dir) as c:
        p = _call(c.get_pipeline, name)
    if output is Output.json:
        return _json(p)
    out = cli_console.console
    out.print(f"[bold]{p['name']}[/bold]  owner {p['owner'] or '(by hand)'}  updated {_when(p['updated_at'])}")
    for e in p["export"]:
        out.print(f"export: {e['agent']} → {', '.join(e.get('destinations') or []) or '-'}", markup=False)
    typer.echo(p["definition_text"], nl=not p["definition_text"].endswith("\n"))


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(pipelines_app, name="pipelines")
