"""Compare a rendered manifest with its live object the way `kubectl diff --server-side` does:
only the fields claractl sets count; what the server adds (status, managedFields,
resourceVersion, uid, timestamps, generation, cluster IPs, defaults) never shows as a change."""

from __future__ import annotations

import copy
from typing import Any

SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences")
SERVER_SPEC = ("clusterIP", "clusterIPs")
# Keys that identify an item of a list (match items by key, not by position).
LIST_KEYS = ("name", "mountPath", "containerPort", "port")


def normalize_for_diff(obj: dict[str, Any], like: dict[str, Any] | None = None) -> dict[str, Any]:
    """obj without server-populated fields; with `like` (the rendered manifest), only its fields."""
    if like is not None:
        # like, normalized, holds no server fields, so cutting obj to its shape drops them too
        return _project(obj, normalize_for_diff(like))
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    spec = out.get("spec")
    if out.get("kind") == "Service" and isinstance(spec, dict):
        for key in SERVER_SPEC:
            spec.pop(key, None)
    return out


def project_like(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """live normalized and cut to the fields of desired (already normalized): no copy of live."""
    return _project(live, desired)


def _project(live: Any, like: Any) -> Any:
    """The part of live that has the shape of like (the fields like sets)."""
    if isinstance(live, dict) and isinstance(like, dict):
        return {k: _project(live[k], v) for k, v in like.items() if k in live}
    if isinstance(live, list) and isinstance(like, list):
        key = _list_key(like)
        if key:
            by_key = {item.get(key): item for item in live if isinstance(item, dict)}
            projected = [_project(by_key[i[key]], i) for i in like if i[key] in by_key]
            extra = [i for i in live if isinstance(i, dict) and i.get(key) not in {x[key] for x in like}]
            return projected + extra           # items added by others still show as a change
        if len(live) == len(like):
            return [_project(a, b) for a, b in zip(live, like)]
    return live


def _list_key(items: list) -> str | None:
    for key in LIST_KEYS:
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def field_changes(desired: dict[str, Any], live: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """(path, before=live, after=desired) for every managed field that differs; [] = in sync."""
    if live is None:
        return [("", None, desired)]
    after = normalize_for_diff(desired)
    before = _project(live, after)
    changes: list[tuple[str, Any, Any]] = []
    _walk("", before, after, changes)
    if desired.get("kind") == "Secret":       # a plan shows that a Secret changed, never its values
        changes = [(p, _hide(b), _hide(a)) if p.startswith((".data", ".stringData")) else (p, b, a)
                   for p, b, a in changes]
    return changes


def _hide(value: Any) -> Any:
    return None if value is None else "(sensitive)"


def _walk(path: str, before: Any, after: Any, out: list) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(after) + [k for k in before if k not in after]:
            _walk(f"{path}.{key}", before.get(key), after.get(key), out)
        return
    key = _list_key(after) if isinstance(after, list) and isinstance(before, list) else None
    if key and all(isinstance(i, dict) and key in i for i in before):
        # containers[name=triton].image rather than the whole list
        old = {i[key]: i for i in before}
        new = {i[key]: i for i in after}
        for item in list(new) + [k for k in old if k not in new]:
            _walk(f"{path}[{key}={item}]", old.get(item), new.get(item), out)
        return
    if before != after:
        out.append((path, before, after))
