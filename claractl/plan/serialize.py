"""The plan as JSON: the `-o json` output and the saved plan file are the same document
(docs/plan-json-format.md, schemas/plan-output.schema.json). Every value is redacted first."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import claractl
from claractl.plan.diff import ABSENT, FieldDiff
from claractl.plan.errors import PlanError
from claractl.plan.model import ACTIONS, FORMAT_VERSION, Change, Plan
from claractl.plan.secrets import SENSITIVE, redact


def _value(v: Any, sensitive: bool) -> Any:
    return SENSITIVE if sensitive else redact(v)


def diff_to_dict(d: FieldDiff) -> dict[str, Any]:
    out: dict[str, Any] = {"path": d.path, "action": d.kind, "sensitive": d.sensitive}
    if d.before is not ABSENT:
        out["before"] = _value(d.before, d.sensitive)
    if d.after is not ABSENT:
        out["after"] = _value(d.after, d.sensitive)
    return out


def change_to_dict(c: Change) -> dict[str, Any]:
    return {
        "address": c.address, "kind": c.kind, "name": c.name, "action": c.action, "reason": c.reason,
        "group": c.group, "actual_name": c.actual_name, "clara_id": c.clara_id,
        "before": None if c.before is None else redact(c.before),
        "after": None if c.after is None else redact(c.after),
        "diffs": [diff_to_dict(d) for d in c.diffs],
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    s = plan.summary
    return {
        "format_version": FORMAT_VERSION,
        "claractl_version": claractl.__version__,
        "project": plan.project,
        "project_file": plan.project_file,
        "target": plan.target,
        "scope": plan.scope,
        "created_at": plan.created_at,
        "destroy": plan.destroy,
        "selectors": {"only": plan.only, "exclude": plan.exclude},
        "fingerprint": plan.fingerprint,
        "state": plan.state_hashes,
        "changes": [change_to_dict(c) for c in plan.changes],
        "unmanaged": plan.unmanaged,
        "warnings": plan.warnings,
        "notes": plan.notes,
        "summary": {"add": s.add, "change": s.change, "destroy": s.destroy,
                    "has_changes": plan.has_changes, "text": s.line()},
    }


def to_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"


def _diff_from(d: dict[str, Any]) -> FieldDiff:
    return FieldDiff(d["path"], d.get("before", ABSENT), d.get("after", ABSENT), bool(d.get("sensitive")))


def plan_from_dict(data: dict[str, Any]) -> Plan:
    version = str(data.get("format_version", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise PlanError(f"plan file format_version {version!r} is not supported (this claractl writes {FORMAT_VERSION})")
    try:
        changes = []
        for c in data["changes"]:
            if c["action"] not in ACTIONS:
                raise PlanError(f"plan file: unknown action {c['action']!r} for {c['address']}")
            changes.append(Change(c["address"], c["action"], c.get("before"), c.get("after"),
                                  [_diff_from(d) for d in c.get("diffs", [])], c.get("reason"),
                                  actual_name=c.get("actual_name"), group=int(c.get("group") or 0),
                                  clara_id=c.get("clara_id")))
        sel = data.get("selectors", {})
        return Plan(
            project=data["project"], target=data["target"], scope=data["scope"], changes=changes,
            state_hashes=dict(data["state"]), fingerprint=data["fingerprint"],
            destroy=bool(data.get("destroy")), only=list(sel.get("only", [])),
            exclude=list(sel.get("exclude", [])), warnings=list(data.get("warnings", [])),
            notes=list(data.get("notes", [])), unmanaged=list(data.get("unmanaged", [])),
            created_at=data.get("created_at", ""), project_file=data.get("project_file", ""),
        )
    except (KeyError, TypeError) as exc:
        raise PlanError(f"plan file is incomplete or damaged (missing {exc})") from None


def write_plan(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write atomically so an interrupted `plan --out` never leaves half a plan file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_json(plan))
    os.replace(tmp, path)
    return path


def read_plan(path: str | os.PathLike[str]) -> Plan:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError(f"{path}: plan file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlanError(f"{path}: not a claractl plan file ({exc})") from None
    if not isinstance(data, dict) or "format_version" not in data:
        raise PlanError(f"{path}: not a claractl plan file (no format_version)")
    return plan_from_dict(data)
