"""Compare a rendered manifest with its live object the way `kubectl diff --server-side` does:
only the fields claractl sets count; what the server adds (status, managedFields,
resourceVersion, uid, timestamps, generation, cluster IPs, defaults) never shows as a change.

Two things the API server rewrites are compared by meaning, not by text:
- quantities: the server returns `"1"` for `1`, `"500m"` for `0.5`, `"1Gi"` for `1073741824`;
- list items: matched by their merge key (`containers[name=triton]`), not their position.
Items another field manager added to a keyed list (`kubectl set env`) are kept in the live view,
so they show as a change until claractl takes them over and removes them.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                   "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers", "ownerReferences")
SERVER_SPEC = ("clusterIP", "clusterIPs")
# Merge keys of Kubernetes' keyed lists, in order of preference (must be unique in the list).
LIST_KEYS = ("name", "mountPath", "containerPort", "port")
# Maps whose values are resource quantities (container resources, PVC requests, quotas).
QUANTITY_MAPS = ("limits", "requests", "hard", "capacity", "allocatable")
QUANTITY_KEYS = ("sizeLimit", "storage")


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


def quantity(value: Any) -> Decimal | None:
    """A resource quantity's value (`500m` → 0.5, `1Gi` → 1073741824); None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        return parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        return None


def same_quantity(a: Any, b: Any) -> bool:
    qa, qb = quantity(a), quantity(b)
    return qa is not None and qa == qb


def _project(live: Any, like: Any, key: str = "", parent: str = "") -> Any:
    """The part of live that has the shape of like (the fields like sets)."""
    if isinstance(live, dict) and isinstance(like, dict):
        return {k: _project(live[k], v, k, key) for k, v in like.items() if k in live}
    if isinstance(live, list) and isinstance(like, list):
        item_key = list_key(like)
        if item_key:
            by_key = {item.get(item_key): item for item in live if isinstance(item, dict)}
            projected = [_project(by_key[i[item_key]], i) for i in like if i[item_key] in by_key]
            ours = {x[item_key] for x in like}
            extra = [i for i in live if isinstance(i, dict) and i.get(item_key) not in ours]
            return projected + extra           # items added by others still show as a change
        if len(live) == len(like):
            return [_project(a, b) for a, b in zip(live, like)]
    if (parent in QUANTITY_MAPS or key in QUANTITY_KEYS) and same_quantity(live, like):
        return like                            # "1" vs 1, "500m" vs 0.5: the same amount
    return live


def list_key(items: list) -> str | None:
    """The merge key every item of the list has, with unique values."""
    for key in LIST_KEYS:
        if items and all(isinstance(i, dict) and key in i for i in items) and len({i[key] for i in items}) == len(items):
            return key
    return None


def extra_items(live: dict[str, Any], desired: dict[str, Any]) -> list[tuple[tuple, dict[str, Any]]]:
    """Items of keyed lists that are live but not in desired (normalized): [(path parts, item)],
    path parts as in FieldsV1 — e.g. (("spec",), …, ("env",), ("name", "DEBUG"))."""
    found: list[tuple[tuple, dict[str, Any]]] = []

    def walk(lv: Any, dv: Any, parts: tuple) -> None:
        if isinstance(lv, dict) and isinstance(dv, dict):
            for k, v in dv.items():
                if k in lv:
                    walk(lv[k], v, parts + (k,))
        elif isinstance(lv, list) and isinstance(dv, list):
            key = list_key(dv)
            if not key:
                return
            ours = {i[key]: i for i in dv}
            for item in lv:
                if not isinstance(item, dict) or key not in item:
                    continue
                if item[key] in ours:
                    walk(item, ours[item[key]], parts + ((key, item[key]),))
                else:
                    found.append((parts + ((key, item[key]),), item))

    walk(live, desired, ())
    return found


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
    key = list_key(after) if isinstance(after, list) and isinstance(before, list) else None
    if key and all(isinstance(i, dict) and key in i for i in before):
        # containers[name=triton].image rather than the whole list
        old = {i[key]: i for i in before}
        new = {i[key]: i for i in after}
        for item in list(new) + [k for k in old if k not in new]:
            _walk(f"{path}[{key}={item}]", old.get(item), new.get(item), out)
        return
    if before != after:
        out.append((path, before, after))
