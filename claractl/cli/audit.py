"""`claractl audit`: read the platform's audit trail (parse, call the API, print)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Optional

import typer

from claractl.cli import console as cli_console
from claractl.cli.jobs import ApiOpt, Output, OutputOpt, StateDirOpt, _call, _client, _json, _table, _when

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(text: Optional[str]) -> Optional[str]:
    """'15m', '2h', '1d' ago, or an ISO time, as the ISO time the API takes."""
    if not text:
        return None
    m = _AGO.match(text.strip())
    if m:
        return (datetime.now(timezone.utc) - timedelta(**{_UNITS[m[2]]: int(m[1])})).isoformat()
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (30s, 15m, 2h, 1d) nor an ISO time") from None


def _what(e: dict) -> str:
    """The event's particulars in a few words: study, job, reason, status."""
    d = e.get("detail") or {}
    parts = []
    if e.get("study_uid"):
        parts.append(f"study {e['study_uid']}" + (f" ({d['instances']} inst)" if d.get("instances") else ""))
    if e.get("job_id"):
        parts.append(f"job {e['job_id'][:8]}")
    for key in ("status", "tls", "reason"):
        if d.get(key) not in (None, ""):
            parts.append(f"{key} {d[key]}")
    return "; ".join(str(p) for p in parts)


def audit(
    kind: Optional[str] = typer.Option(None, "--kind", help="association, study, job, export or api."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who: a calling AE title, 'api (bearer token)', 'engine'."),
    study: Optional[str] = typer.Option(None, "--study", metavar="UID", help="Events of one study."),
    job: Optional[str] = typer.Option(None, "--job", metavar="ID", help="Events of one job."),
    since: Optional[str] = typer.Option(None, "--since", help="15m, 2h, 1d ago, or an ISO time."),
    failures: bool = typer.Option(False, "--failures", help="Only refusals and failures."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="At most this many (newest)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events (Ctrl-C stops)."),
    api: Optional[str] = ApiOpt, state_dir: str = StateDirOpt, output: Output = OutputOpt,
) -> None:
    """The audit trail, newest last: associations, studies received, jobs, exports and API writes."""
    filters = dict(kind=kind, actor=actor, study_uid=study, job_id=job, since=_since(since), failures=failures)
    with _client(api, state_dir) as c:
        events = list(reversed(_call(c.list_audit, **filters, limit=limit)))
        _show(events, output)
        last = max((e["id"] for e in events), default=None)
        while follow:
            if last is None:           # nothing yet: start after the newest event of the whole trail
                last = max((e["id"] for e in _call(c.list_audit, limit=1)), default=0)
            time.sleep(1)
            new = _call(c.list_audit, **filters, after_id=last, limit=1000)
            _show(new, output, header=False)
            last = max((e["id"] for e in new), default=last)


def _show(events: list[dict], output: Output, header: bool = True) -> None:
    """A table (or JSON list); when following (`header` False), rows only (or one JSON object a line)."""
    if output is Output.json:
        if header:
            _json(events)
        for e in [] if header else events:
            typer.echo(json.dumps(e, default=str))
        return
    if not events:
        if header:
            cli_console.console.print("no audit events")
        return
    table = _table(show_header=header)
    for col in ("TIME", "KIND", "ACTION", "OUTCOME", "ACTOR", "FROM", "TARGET", "WHAT"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(_when(e["at"]), e["kind"], e["action"], e["outcome_text"], e["actor"] or "-",
                      e["source"] or "-", e["target"] or "-", _what(e))
    cli_console.console.print(table, soft_wrap=False)


def register(app: typer.Typer) -> None:
    app.command(name="audit")(audit)
