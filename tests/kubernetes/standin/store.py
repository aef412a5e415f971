"""Objects and the write semantics of the API server: resourceVersion, generation, uid,
optimistic concurrency, managedFields per manager, server-side apply with conflicts, dry-run."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
import uuid
from typing import Any, Callable

import jsonpatch

from . import fields as F
from .resources import immutable_changes, Resource, apply_defaults, validate


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict] = {}   # (qualified, namespace, name) -> object
        self._rv = itertools.count(1000)
        self._ips = itertools.count(10)
        self.resource_version = "1000"
        # admission(operation, resource, obj) -> None or (webhook name, message) to deny
        self.admission: Callable[[str, Resource, dict], tuple[str, str] | None] | None = None
        # controller(resource, obj) may fill status after a write (e.g. mark Deployments available)
        self.controller: Callable[[Resource, dict], None] | None = None

    # ---- helpers ----
    def _next_rv(self) -> str:
        self.resource_version = str(next(self._rv))
        return self.resource_version

    def _key(self, res: Resource, ns: str | None, name: str) -> tuple[str, str, str]:
        return (res.qualified, ns or "", name)

    def _require_namespace(self, res: Resource, ns: str | None) -> None:
        if res.namespaced and ("namespaces", "", ns) not in self.objects:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})

    def _check_body(self, res: Resource, ns: str | None, obj: Any, name: str | None = None) -> dict:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        if obj.get("kind") not in (None, res.kind) or obj.get("apiVersion") not in (None, res.api_version):
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not match "
                           f"the expected API version ({res.api_version}) or kind {obj.get('kind')} is not {res.kind}")
        meta = obj.setdefault("metadata", {})
        if name is not None and meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object "
                           f"({meta.get('name')}) does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        return obj

    def _validate(self, res: Resource, obj: dict, operation: str, old: dict | None = None) -> None:
        errors = validate(res, obj) + (immutable_changes(res, old, obj) if old is not None else [])
        name = obj["metadata"].get("name", "")
        if errors:
            text = "; ".join(f"{f}: {m}" for f, m in errors)
            raise ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: {text}',
                           {"name": name, "group": res.group, "kind": res.kind,
                            "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in errors]})
        if self.admission:
            denied = self.admission(operation, res, obj)
            if denied:
                hook, message = denied
                raise ApiError(403, "Forbidden", f'admission webhook "{hook}" denied the request: {message}')

    def _finish(self, res: Resource, obj: dict, old: dict | None) -> dict:
        """Common bookkeeping of every accepted write."""
        meta = obj["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            meta["generation"] = 1
        else:
            for k in ("uid", "creationTimestamp"):
                meta[k] = old["metadata"][k]
            spec_changed = {k: v for k, v in obj.items() if k not in ("metadata", "status")} != \
                           {k: v for k, v in old.items() if k not in ("metadata", "status")}
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if spec_changed else 0)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        apply_defaults(res, obj, lambda: f"10.96.0.{next(self._ips)}")
        return obj

    # ---- managedFields ----
    @staticmethod
    def managers(obj: dict) -> list[dict]:
        return obj.get("metadata", {}).get("managedFields") or []

    def _set_manager(self, obj: dict, res: Resource, manager: str, operation: str, paths: set, subresource: str = "") -> None:
        entries = [e for e in self.managers(obj)
                   if not (e["manager"] == manager and e["operation"] == operation and e.get("subresource", "") == subresource)]
        if paths:
            entry = {"manager": manager, "operation": operation, "apiVersion": res.api_version, "time": now(),
                     "fieldsType": "FieldsV1", "fieldsV1": F.to_fields_v1(sorted(paths, key=repr))}
            if subresource:
                entry["subresource"] = subresource
            entries.append(entry)
        obj["metadata"]["managedFields"] = entries

    def _strip_paths(self, obj: dict, paths: set, keep: tuple[str, str] | None = None) -> None:
        """Other managers lose ownership of these paths."""
        entries = []
        for e in self.managers(obj):
            if keep and (e["manager"], e["operation"]) == keep:
                entries.append(e)
                continue
            owned = F.from_fields_v1(e["fieldsV1"]) - paths
            if owned:
                entries.append({**e, "fieldsV1": F.to_fields_v1(sorted(owned, key=repr))})
        obj["metadata"]["managedFields"] = entries

    def _track_update(self, res: Resource, old: dict | None, new: dict, manager: str) -> None:
        """An Update (create/PUT/PATCH): the manager owns what it changed; removed fields are nobody's."""
        new_tracked, new_paths = F.tracked(new), F.field_set(F.tracked(new))
        if old is None:
            new["metadata"]["managedFields"] = []
            self._set_manager(new, res, manager, "Update", new_paths)
            return
        old_tracked = F.tracked(old)
        old_paths = F.field_set(old_tracked)
        changed = {p for p in new_paths if F.get_value(old_tracked, p) != (True, F.get_value(new_tracked, p)[1])}
        removed = old_paths - new_paths
        new["metadata"]["managedFields"] = copy.deepcopy(self.managers(old))
        self._strip_paths(new, changed | removed)
        mine = [e for e in self.managers(new) if e["manager"] == manager and e["operation"] == "Update"]
        owned = F.from_fields_v1(mine[0]["fieldsV1"]) if mine else set()
        self._set_manager(new, res, manager, "Update", owned | changed)

    # ---- operations ----
    def get(self, res: Resource, ns: str | None, name: str) -> dict:
        with self.lock:
            obj = self.objects.get(self._key(res, ns, name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def list(self, res: Resource, ns: str | None, selector) -> tuple[list[dict], str]:
        with self.lock:
            items = [copy.deepcopy(o) for (q, n, _), o in sorted(self.objects.items())
                     if q == res.qualified and (ns is None or n == ns)
                     and selector(o["metadata"].get("labels"))]
            return items, self.resource_version

    def create(self, res: Resource, ns: str | None, obj: Any, manager: str, dry_run: bool) -> dict:
        with self.lock:
            obj = self._check_body(res, ns, copy.deepcopy(obj))
            self._require_namespace(res, ns)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if res.namespaced:
                meta["namespace"] = ns
            if meta.get("resourceVersion"):
                raise ApiError(400, "BadRequest", "resourceVersion should not be set on objects to be created")
            self._validate(res, obj, "CREATE")
            if self._key(res, ns, meta["name"]) in self.objects:
                raise ApiError(409, "AlreadyExists", f'{res.qualified} "{meta["name"]}" already exists',
                               {"name": meta["name"], "group": res.group, "kind": res.plural})
            if res.status_subresource and res.kind != "Namespace":
                obj.pop("status", None)
            self._track_update(res, None, obj, manager)
            self._finish(res, obj, None)
            return self._store(res, ns, obj, dry_run)

    def _store(self, res: Resource, ns: str | None, obj: dict, dry_run: bool) -> dict:
        if dry_run:
            return obj
        old = self.objects.get(self._key(res, ns, obj["metadata"]["name"]))
        if old is not None and _same(old, obj):
            return copy.deepcopy(old)      # a no-op write stores nothing and keeps resourceVersion
        obj["metadata"]["resourceVersion"] = self._next_rv()
        if self.controller:
            self.controller(res, obj)
        self.objects[self._key(res, ns, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def update(self, res: Resource, ns: str | None, name: str, obj: Any, manager: str, dry_run: bool,
               subresource: str = "") -> dict:
        """PUT: optimistic concurrency on metadata.resourceVersion when the client sends one."""
        with self.lock:
            obj = self._check_body(res, ns, copy.deepcopy(obj), name)
            old = self.objects.get(self._key(res, ns, name))
            if old is None:
                raise not_found(res, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                               "the object has been modified; please apply your changes to the latest version and try again",
                               {"name": name, "group": res.group, "kind": res.plural})
            return self._write(res, ns, name, old, obj, manager, dry_run, subresource)

    def _write(self, res, ns, name, old, obj, manager, dry_run, subresource):
        obj["metadata"]["name"] = name
        if res.namespaced:
            obj["metadata"]["namespace"] = ns
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = obj.get("status")
            self._set_manager(new, res, manager, "Update", F.field_set({"status": new["status"] or {}}), "status")
            new["metadata"]["managedFields"] = self.managers(new)
            return self._store(res, ns, new, dry_run)
        if res.status_subresource:
            obj["status"] = copy.deepcopy(old.get("status"))     # status only changes through /status
            if obj["status"] is None:
                obj.pop("status")
        self._validate(res, obj, "UPDATE", old)
        self._track_update(res, old, obj, manager)
        self._finish(res, obj, old)
        return self._store(res, ns, obj, dry_run)

    def patch(self, res: Resource, ns: str | None, name: str, content_type: str, body: Any, manager: str | None,
              dry_run: bool, force: bool, subresource: str = "") -> dict:
        with self.lock:
            if content_type == "application/apply-patch+yaml":
                return self._apply(res, ns, name, body, manager, dry_run, force, subresource)
            old = self.objects.get(self._key(res, ns, name))
            if old is None:
                raise not_found(res, name)
            base = copy.deepcopy(old)
            if content_type == "application/json-patch+json":
                try:
                    new = jsonpatch.apply_patch(base, body)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                    raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc}")
            elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                new = _merge_patch(base, body, strategic=content_type.startswith("application/strategic"))
            else:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
            rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                               "the object has been modified; please apply your changes to the latest version and try again")
            new = self._check_body(res, ns, new, name)
            return self._write(res, ns, name, old, new, manager or "unknown", dry_run, subresource)

    def _apply(self, res: Resource, ns: str | None, name: str, config: Any, manager: str | None,
               dry_run: bool, force: bool, subresource: str = "") -> dict:
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH, application/apply-patch+yaml requires fieldManager to be set")
        config = self._check_body(res, ns, copy.deepcopy(config), name)
        if not config.get("apiVersion") or not config.get("kind"):
            raise ApiError(400, "BadRequest", "apiVersion and kind must be set in an apply configuration")
        config["metadata"]["name"] = name
        applied = F.tracked(config)
        applied_paths = F.field_set(applied)
        old = self.objects.get(self._key(res, ns, name))
        rv = config["metadata"].get("resourceVersion")
        if old is not None and rv and rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": '
                           "the object has been modified; please apply your changes to the latest version and try again",
                           {"name": name, "group": res.group, "kind": res.plural})
        if subresource == "status":
            if old is None:
                raise not_found(res, name)
            new = copy.deepcopy(old)
            new["status"] = F.merge(copy.deepcopy(old.get("status") or {}), config.get("status") or {})
            self._set_manager(new, res, manager, "Apply", F.field_set({"status": config.get("status") or {}}), "status")
            return self._store(res, ns, new, dry_run)
        if old is None:
            self._require_namespace(res, ns)
            obj = copy.deepcopy(config)
            if res.namespaced:
                obj["metadata"]["namespace"] = ns
            if res.status_subresource and res.kind != "Namespace":
                obj.pop("status", None)
            self._validate(res, obj, "CREATE")
            obj["metadata"]["managedFields"] = []
            self._set_manager(obj, res, manager, "Apply", applied_paths)
            self._finish(res, obj, None)
            return self._store(res, ns, obj, dry_run)

        live_tracked = F.tracked(old)
        conflicts: list[tuple[str, F.Path]] = []
        for entry in self.managers(old):
            if entry["manager"] == manager or entry.get("subresource"):
                continue
            for path in F.from_fields_v1(entry["fieldsV1"]) & applied_paths:
                if F.get_value(live_tracked, path) != F.get_value(applied, path):
                    conflicts.append((entry["manager"], path))
        if conflicts and not force:
            conflicts.sort(key=lambda c: (c[0], F.path_text(c[1])))
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}"',
                       "field": F.path_text(p)} for m, p in conflicts]
            lines = "\n".join(f'- conflict with "{m}" using {res.api_version}: {F.path_text(p)}' for m, p in conflicts)
            raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                           f"{'s' if len(conflicts) > 1 else ''}: {lines[2:] if len(conflicts) == 1 else chr(10) + lines}",
                           {"name": name, "group": res.group, "kind": res.plural, "causes": causes})
        new = copy.deepcopy(old)
        # Fields this manager applied before and leaves out now are removed, unless someone else owns them.
        previous = next((F.from_fields_v1(e["fieldsV1"]) for e in self.managers(old)
                         if e["manager"] == manager and e["operation"] == "Apply"), set())
        others = set().union(*[F.from_fields_v1(e["fieldsV1"]) for e in self.managers(old)
                               if not (e["manager"] == manager and e["operation"] == "Apply")] or [set()])
        for path in sorted(previous - applied_paths - others, key=len, reverse=True):
            F.remove_path(new, path)
        merged = F.merge(new, {k: v for k, v in config.items() if k != "status"})
        merged["metadata"]["managedFields"] = copy.deepcopy(self.managers(old))
        if force:
            self._strip_paths(merged, {p for _, p in conflicts})
        self._set_manager(merged, res, manager, "Apply", applied_paths)
        if res.status_subresource:
            merged["status"] = copy.deepcopy(old.get("status"))
            if merged["status"] is None:
                merged.pop("status")
        self._validate(res, merged, "UPDATE", old)
        self._finish(res, merged, old)
        return self._store(res, ns, merged, dry_run)

    def delete(self, res: Resource, ns: str | None, name: str, dry_run: bool, precondition_rv: str | None = None) -> dict:
        with self.lock:
            key = self._key(res, ns, name)
            obj = self.objects.get(key)
            if obj is None:
                raise not_found(res, name)
            if precondition_rv and precondition_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f"Operation cannot be fulfilled on {res.qualified} \"{name}\": "
                               f"Precondition failed: ResourceVersion in precondition: {precondition_rv}, "
                               f"ResourceVersion in object meta: {obj['metadata']['resourceVersion']}")
            if self.admission:
                denied = self.admission("DELETE", res, obj)
                if denied:
                    raise ApiError(403, "Forbidden", f'admission webhook "{denied[0]}" denied the request: {denied[1]}')
            if dry_run:
                return copy.deepcopy(obj)
            del self.objects[key]
            if res.kind == "Namespace":      # namespace deletion takes its objects with it
                for k in [k for k in self.objects if k[1] == name]:
                    del self.objects[k]
            self._next_rv()
            return copy.deepcopy(obj)


def _merge_patch(target: Any, patch: Any, strategic: bool, name: str = "") -> Any:
    """RFC 7386 merge patch; strategic=True also merges keyed lists by key (no $patch directives)."""
    if not isinstance(patch, dict):
        if strategic and isinstance(patch, list) and isinstance(target, list):
            return F.merge(target, patch, name)
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value, strategic, key)
    return result


def _same(old: dict, new: dict) -> bool:
    """Equal apart from resourceVersion and the managedFields timestamps."""
    def strip(o: dict) -> dict:
        o = copy.deepcopy(o)
        o["metadata"].pop("resourceVersion", None)
        for e in o["metadata"].get("managedFields") or []:
            e.pop("time", None)
        return o
    return strip(old) == strip(new)
