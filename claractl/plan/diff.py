"""Field-level differences between two values, with paths like `operators[1].container.tag`.

Lists whose items all carry a unique identifying key (`name`, or Kubernetes' merge keys
`mountPath`, `containerPort`, `port`) are matched by that key, as Kubernetes keys them:
`containers[name=triton].ports[name=http]`, not positions that shift when an item is added.
Keys that would read ambiguously in a dotted path are quoted: `labels["claractl.dev/project"]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
    # The path as keys (str), list indexes (int) and list-item keys ((key, value)); not saved in
    # plan files, for targets that attribute a change (e.g. to the Kubernetes field manager).
    parts: tuple = field(default=(), compare=False, repr=False)

    @property
    def kind(self) -> str:
        if self.before is ABSENT:
            return "add"
        if self.after is ABSENT:
            return "remove"
        return "change"


# Identifying keys of list items, in order of preference (a key must be unique on both sides).
ITEM_KEYS = ("name", "mountPath", "containerPort", "port")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _join(prefix: str, key: str) -> str:
    part = key if _PLAIN_KEY.fullmatch(key) else '["' + key.replace('"', '\\"') + '"]'
    if part.startswith("["):
        return prefix + part
    return f"{prefix}.{part}" if prefix else part


def item_key(*sides: list) -> str | None:
    """The key that identifies every dict item of these lists uniquely, if there is one."""
    items = [i for side in sides for i in side]
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in ITEM_KEYS:
        if all(key in i and isinstance(i[key], (str, int)) for i in items) and \
                all(len({i[key] for i in side}) == len(side) for side in sides):
            return key
    return None


def field_diffs(before: Any, after: Any, path: str = "", sensitive: bool = False,
                parts: tuple = ()) -> list[FieldDiff]:
    """Leaf-level differences; dicts recurse by key, lists by item key (else by index)."""
    sensitive = sensitive or isinstance(before, Secret) or isinstance(after, Secret)
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldDiff] = []
        for key in list(before) + [k for k in after if k not in before]:
            out += field_diffs(before.get(key, ABSENT), after.get(key, ABSENT), _join(path, str(key)),
                               sensitive or is_sensitive_key(str(key)), parts + (str(key),))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        key = item_key(before, after)
        if key:
            old, new = {i[key]: i for i in before}, {i[key]: i for i in after}
            for k in list(old) + [k for k in new if k not in old]:
                out += field_diffs(old.get(k, ABSENT), new.get(k, ABSENT), f"{path}[{key}={k}]", sensitive,
                                   parts + ((key, k),))
            return out
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else ABSENT
            a = after[i] if i < len(after) else ABSENT
            out += field_diffs(b, a, f"{path}[{i}]", sensitive, parts + (i,))
        return out
    if before is ABSENT and after is ABSENT:
        return []
    if before is not ABSENT and after is not ABSENT and _equal(before, after):
        return []
    return [FieldDiff(path, before, after, sensitive, parts)]


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
        key = item_key(value)
        for i, v in enumerate(value):
            out += leaves(v, f"{path}[{key}={v[key]}]" if key else f"{path}[{i}]", sensitive)
        return out
    return [FieldDiff(path, ABSENT, value, sensitive or isinstance(value, Secret))]
