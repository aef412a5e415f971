"""Field-level differences between two values, with paths like `operators[1].container.tag`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from claractl.plan.secrets import is_sensitive_key, plain
from claractl.project.model import Secret

ABSENT = object()   # a key or list item that exists on one side only


@dataclass
class FieldDiff:
    path: str
    before: Any          # ABSENT when added
    after: Any           # ABSENT when removed
    sensitive: bool = False

    @property
    def kind(self) -> str:
        if self.before is ABSENT:
            return "add"
        if self.after is ABSENT:
            return "remove"
        return "change"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def field_diffs(before: Any, after: Any, path: str = "", sensitive: bool = False) -> list[FieldDiff]:
    """Leaf-level differences; dicts recurse by key, lists by index."""
    sensitive = sensitive or isinstance(before, Secret) or isinstance(after, Secret)
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldDiff] = []
        for key in list(before) + [k for k in after if k not in before]:
            sub = _join(path, str(key))
            out += field_diffs(before.get(key, ABSENT), after.get(key, ABSENT), sub,
                               sensitive or is_sensitive_key(str(key)))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else ABSENT
            a = after[i] if i < len(after) else ABSENT
            out += field_diffs(b, a, f"{path}[{i}]", sensitive)
        return out
    if before is ABSENT and after is ABSENT:
        return []
    if before is not ABSENT and after is not ABSENT and _equal(before, after):
        return []
    return [FieldDiff(path, before, after, sensitive)]


def _equal(a: Any, b: Any) -> bool:
    a, b = plain(a), plain(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def leaves(value: Any, path: str = "", sensitive: bool = False) -> list[FieldDiff]:
    """Every leaf of a value as an 'add' (for showing a create) — empty containers count as leaves."""
    if isinstance(value, dict) and value:
        out = []
        for k, v in value.items():
            out += leaves(v, _join(path, str(k)), sensitive or is_sensitive_key(str(k)))
        return out
    if isinstance(value, list) and value:
        out = []
        for i, v in enumerate(value):
            out += leaves(v, f"{path}[{i}]", sensitive)
        return out
    return [FieldDiff(path, ABSENT, value, sensitive or isinstance(value, Secret))]
