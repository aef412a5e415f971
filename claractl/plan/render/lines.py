"""The per-change lines both human renderers share: symbol, address, and field diffs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from claractl.plan.diff import ABSENT, FieldDiff, leaves
from claractl.plan.model import CREATE, DELETE, REPLACE, UPDATE, Change
from claractl.plan.secrets import SENSITIVE, redact

SYMBOL = {CREATE: "+", UPDATE: "~", DELETE: "-", REPLACE: "-/+"}
STYLE = {CREATE: "green", UPDATE: "yellow", DELETE: "red", REPLACE: "magenta",
         "add": "green", "remove": "red", "change": "yellow"}
MAX_CREATE_FIELDS = 12      # a new pipeline has many leaves; show the first ones
MAX_VALUE = 80


def value_text(value: Any, sensitive: bool = False) -> str:
    if sensitive:
        return SENSITIVE
    text = json.dumps(redact(value), ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


@dataclass
class Line:
    symbol: str
    style: str
    text: str
    indent: int = 0


def field_line(d: FieldDiff) -> Line:
    if d.before is ABSENT:
        return Line("+", STYLE["add"], f"{d.path}: {value_text(d.after, d.sensitive)}", 1)
    if d.after is ABSENT:
        return Line("-", STYLE["remove"], f"{d.path}: {value_text(d.before, d.sensitive)}", 1)
    return Line("~", STYLE["change"],
                f"{d.path}: {value_text(d.before, d.sensitive)} → {value_text(d.after, d.sensitive)}", 1)


def change_lines(c: Change) -> list[Line]:
    notes = [f"Clara id {c.clara_id}"] if c.clara_id else []    # what Clara API scripts know it by
    if c.action == REPLACE and c.reason:
        notes.append(f"must be replaced: {c.reason}")
    elif c.action in (UPDATE, CREATE) and c.reason:   # a target's note, e.g. "restarts: dicom-adapter"
        notes.append(c.reason)
    head = c.address + (f" ({'; '.join(notes)})" if notes else "")
    out = [Line(SYMBOL[c.action], STYLE[c.action], head)]
    if c.action == CREATE:
        fields = leaves(c.after or {})
        out += [field_line(d) for d in fields[:MAX_CREATE_FIELDS]]
        if len(fields) > MAX_CREATE_FIELDS:
            out.append(Line(" ", "dim", f"… {len(fields) - MAX_CREATE_FIELDS} more fields", 1))
    elif c.action in (UPDATE, REPLACE):
        out += [field_line(d) for d in c.diffs]
    return out
