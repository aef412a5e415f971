"""Field sets, as server-side apply tracks them (managedFields, FieldsV1), and the apply merge.

A field path is a tuple: map keys are strings, a keyed list item is ("k", '{"name":"x"}'), and
"." after an item means "this item exists". Lists named in KEYED are associative (merged by
their key fields, like the Kubernetes schema's listType=map); every other list is atomic.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

Path = tuple

# list field name -> candidate key-field sets (the first whose fields an item has is used)
KEYED: dict[str, list[tuple[str, ...]]] = {
    "containers": [("name",)],
    "initContainers": [("name",)],
    "env": [("name",)],
    "volumes": [("name",)],
    "volumeMounts": [("mountPath",)],
    "imagePullSecrets": [("name",)],
    "ports": [("containerPort", "protocol"), ("port", "protocol")],
}
# Key fields the server defaults, so an item without them still matches its live counterpart.
KEY_DEFAULTS = {"protocol": "TCP"}
# Not tracked: identity and server-owned metadata.
UNTRACKED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                  "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}


def _item_key(list_name: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for keys in KEYED.get(list_name, []):
        if all(k in item or k in KEY_DEFAULTS for k in keys):
            return json.dumps({k: item.get(k, KEY_DEFAULTS.get(k)) for k in keys}, sort_keys=True, separators=(",", ":"))
    return None


def _is_keyed(list_name: str, items: list) -> bool:
    return list_name in KEYED and bool(items) and all(_item_key(list_name, i) for i in items)


def tracked(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of an object whose fields are owned: no apiVersion/kind/status/identity."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    if "metadata" in out:
        meta = {k: v for k, v in out["metadata"].items() if k not in UNTRACKED_META}
        if meta:
            out["metadata"] = meta
        else:
            out.pop("metadata")
    return out


def field_set(value: Any, path: Path = ()) -> set[Path]:
    """Leaf paths of value (plus an existence marker per keyed list item)."""
    if isinstance(value, dict):
        if not value:
            return {path} if path else set()
        result: set[Path] = set()
        for key, sub in value.items():
            result |= field_set(sub, path + (key,))
        return result
    if isinstance(value, list) and path and isinstance(path[-1], str) and _is_keyed(path[-1], value):
        result = set()
        for item in value:
            item_path = path + (("k", _item_key(path[-1], item)),)
            result.add(item_path + (".",))
            result |= field_set(item, item_path)
        return result
    return {path}


def get_value(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) at path."""
    current = obj
    parent_name = None
    for element in path:
        if element == ".":
            return True, True
        if isinstance(element, tuple):
            if not isinstance(current, list):
                return False, None
            match = [i for i in current if _item_key(parent_name or "", i) == element[1]]
            if not match:
                return False, None
            current = match[0]
        else:
            if not isinstance(current, dict) or element not in current:
                return False, None
            current = current[element]
            parent_name = element
    return True, current


def remove_path(obj: dict[str, Any], path: Path) -> None:
    """Delete the field (or the keyed list item for a "." path) if present."""
    if not path:
        return
    if path[-1] == ".":
        found, lst = get_value(obj, path[:-2])
        if found and isinstance(lst, list):
            key = path[-2][1]
            lst[:] = [i for i in lst if _item_key(path[-3], i) != key]
        return
    found, parent = get_value(obj, path[:-1])
    if found and isinstance(parent, dict):
        parent.pop(path[-1], None)


def merge(live: Any, config: Any, name: str = "") -> Any:
    """Apply-merge config into live: maps recursively, keyed lists by key, everything else replaced."""
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for key, value in config.items():
            out[key] = merge(live[key], value, key) if key in live else copy.deepcopy(value)
        return out
    if isinstance(live, list) and isinstance(config, list) and _is_keyed(name, config) and _is_keyed(name, live or config):
        out_list = [copy.deepcopy(i) for i in live]
        index = {_item_key(name, i): n for n, i in enumerate(out_list)}
        for item in config:
            key = _item_key(name, item)
            if key in index:
                out_list[index[key]] = merge(out_list[index[key]], item, name)
            else:
                index[key] = len(out_list)
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(config)


def path_text(path: Path) -> str:
    """.spec.template.spec.containers[name="x"].image — the form kubectl prints in conflicts."""
    text = ""
    for element in path:
        if element == ".":
            continue
        if isinstance(element, tuple):
            key = json.loads(element[1])
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
        else:
            text += "." + element
    return text


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for element in path:
            if element == ".":
                node = node.setdefault(".", {})
            elif isinstance(element, tuple):
                node = node.setdefault("k:" + element[1], {})
            else:
                node = node.setdefault("f:" + element, {})
    return root


def from_fields_v1(tree: dict[str, Any], path: Path = ()) -> set[Path]:
    result: set[Path] = set()
    if not tree and path:
        return {path}
    for key, sub in tree.items():
        if key == ".":
            result.add(path + (".",))
        elif key.startswith("k:"):
            result |= from_fields_v1(sub, path + (("k", key[2:]),))
        elif key.startswith("f:"):
            result |= from_fields_v1(sub, path + (key[2:],))
    return result
