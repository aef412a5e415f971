"""Write objects: server-side apply with field manager "claractl", and delete."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from claractl.kube.client import FIELD_MANAGER, Rest, kind_of
from claractl.kube.labels import PROJECT_LABEL
from claractl.kube.errors import ApplyConflict, status_of, translate


def _address(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def apply_object(rest: Rest, obj: dict[str, Any], force_conflicts: bool = False,
                 dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply obj; returns the live object. Conflicts raise ApplyConflict naming the
    other manager(s) and fields; force_conflicts takes those fields over."""
    kind = kind_of(obj)
    meta = obj["metadata"]
    namespace = meta.get("namespace") if kind.namespaced else None
    query = [("fieldManager", FIELD_MANAGER)]
    if force_conflicts:
        query.append(("force", "true"))
    if dry_run:
        query.append(("dryRun", "All"))
    path = f"{kind.collection(namespace)}/{meta['name']}"
    try:
        data, _s, _h = rest.api.call_api(
            path, "PATCH", query_params=query, body=obj,
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            response_type="object", auth_settings=["BearerToken"], _request_timeout=rest.timeout)
        return data
    except ApiException as exc:
        status = status_of(exc)
        causes = (status.get("details") or {}).get("causes") or []
        if exc.status == 409 and causes:
            conflicts = []
            for cause in causes:
                manager = cause.get("message", "").split('"')[1] if '"' in cause.get("message", "") else "unknown"
                conflicts.append((manager, cause.get("field", "")))
            raise ApplyConflict(_address(obj), conflicts) from None
        raise translate(exc, f"apply {_address(obj)}", rest.host) from None
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, f"apply {_address(obj)}", rest.host) from None


def existing_owner(rest: Rest, obj: dict[str, Any]) -> str | None:
    """For a planned create: the claractl project that owns an object of that name already
    ("" = one not made by claractl), or None when the name is free. Two projects sharing a
    namespace would otherwise take each other's objects over silently (same field manager)."""
    kind = kind_of(obj)
    meta = obj["metadata"]
    live = rest.get(kind, meta.get("namespace") if kind.namespaced else None, meta["name"])
    if live is None:
        return None
    return ((live.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL, "")


def delete_object(rest: Rest, obj: dict[str, Any], dry_run: bool = False, foreground: bool = False) -> bool:
    """Delete obj; False when it was already gone. Background propagation (dependents go after
    it), or foreground: the object stays, being deleted, until its dependents (pods) are gone."""
    kind = kind_of(obj)
    meta = obj["metadata"]
    namespace = meta.get("namespace") if kind.namespaced else None
    query = [("dryRun", "All")] if dry_run else []
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground" if foreground else "Background"}
    try:
        rest.api.call_api(f"{kind.collection(namespace)}/{meta['name']}", "DELETE", query_params=query,
                          body=body, header_params={"Content-Type": "application/json", "Accept": "application/json"},
                          response_type="object", auth_settings=["BearerToken"], _request_timeout=rest.timeout)
        return True
    except ApiException as exc:
        if exc.status == 404 and (status_of(exc).get("details") or {}).get("name") == meta["name"]:
            return False
        raise translate(exc, f"delete {_address(obj)}", rest.host) from None
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, f"delete {_address(obj)}", rest.host) from None
