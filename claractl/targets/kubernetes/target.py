"""The kubernetes target: the project's services as Helm-rendered objects applied with
server-side apply, and its platform-level objects through the platform API behind the API
server's service proxy.

Addresses: each service expands into its rendered objects, `service.triton/Deployment/clara-triton`;
models, pipelines, AE titles, sources and destinations keep their usual addresses. The fields of
an object are its manifest without server-populated parts; the live side is cut to the fields
the manifest sets (kubectl diff --server-side), so only what claractl manages can differ.

Ordering, waiting and replacing follow the data in rules.py. An object that exists but is being
deleted counts as absent (apply waits until it is gone, then creates it); a workload whose fields
match but which is not ready stays in the plan as an update ("not ready: …"), so an apply that
failed its wait is finished by the next one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from claractl.kube.apply import apply_object, delete_object, existing_owner
from claractl.kube.client import FIELD_MANAGER, KINDS, Rest, load_api_client
from claractl.kube.diff import extra_items, normalize_for_diff, project_like
from claractl.kube.errors import KubeError
from claractl.kube.errors import LockHeld as LeaseHeld
from claractl.kube.inventory import read_inventory
from claractl.kube.labels import PROJECT_LABEL, SERVICE_LABEL
from claractl.kube.lock import LeaseLock
from claractl.kube.lock import force_unlock as lease_force_unlock
from claractl.kube.proxy import platform_client, proxy_status
from claractl.kube.wait import pod_problems, readiness, wait_gone, wait_ready
from claractl.plan import ActualObject, ActualState, ApplyResult, Change, Resource, TargetError
from claractl.plan import address as addr
from claractl.plan.model import CREATE, DELETE, REPLACE, UPDATE
from claractl.plan.secrets import plain
from claractl.platform.client import ApiError, PlatformClient
from claractl.project.model import Project, Secret
from claractl.targets.base import LockHeld, LockInfo, Target
from claractl.targets.kubernetes import rules
from claractl.targets.kubernetes.helm import HelmError
from claractl.targets.kubernetes.manifests import (
    desired_objects, generated_secret, generated_token_secret, namespace_object,
)
from claractl.targets.kubernetes.values import POSTGRESQL_SECRET, TOKEN_SECRET, namespace_of, own_postgresql
from claractl.targets.platform_objects import PlatformObjects

WAIT_TIMEOUT = 300.0       # seconds per object (--timeout; CLARA_K8S_WAIT_TIMEOUT)
LEASE_SECONDS = 60
# Workloads are deleted in the foreground: the object stays until its pods are gone, so a
# destroy that waits for it has really stopped them (and their volumes are free).
FOREGROUND_KINDS = ("Deployment", "StatefulSet", "Job")


def _secret_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Secret values as `Secret`s: compared by value, shown and hashed as "(sensitive)"."""
    if fields.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(fields.get(key), dict):
                fields[key] = {k: Secret("kubernetes", str(v)) for k, v in fields[key].items()}
    return fields


def _readable(fields: dict[str, Any]) -> dict[str, Any]:
    """ConfigMap values that are JSON documents (platform.json) as parsed values, so a plan shows
    `data["platform.json"].engine.workers: 2 → 4` instead of a cut-off string."""
    data = fields.get("data") if fields.get("kind") == "ConfigMap" else None
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith(".json") and isinstance(value, str):
                try:
                    data[key] = json.loads(value)
                except ValueError:
                    pass
    return fields


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    return _readable(_secret_fields(obj))


def _managers(live: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(manager, fieldsV1) of every field manager but claractl; status writers excluded (a
    `kubectl scale` is manager "kubectl" on the `scale` subresource, and counts)."""
    return [(m.get("manager", "?"), m.get("fieldsV1") or {})
            for m in (live.get("metadata") or {}).get("managedFields") or []
            if m.get("manager") != FIELD_MANAGER and m.get("subresource") != "status"]


def _owns(fields: dict[str, Any], parts: tuple, live: Any) -> bool:
    """Whether a FieldsV1 set holds the field at `parts` of the live object (keys, and (key, value)
    for keyed list items, whose FieldsV1 key `k:{…}` names the item by its merge key — e.g.
    containerPort + protocol for a port we address by name). A leaf `{}` owns everything under it."""
    node: Any = fields
    for part in parts:
        if node == {}:
            return True                            # the whole value (e.g. a JSON string in a ConfigMap)
        if not isinstance(node, dict):
            return False
        if isinstance(part, tuple):
            key, value = part
            item = next((i for i in live or [] if isinstance(i, dict) and i.get(key) == value), None)
            if item is None:
                return False
            match = next((v for k, v in node.items() if k.startswith("k:")
                          and all(item.get(mk) == mv for mk, mv in json.loads(k[2:]).items())), None)
            if match is None:
                return False
            node, live = match, item
        elif isinstance(part, str) and f"f:{part}" in node:
            node, live = node[f"f:{part}"], (live or {}).get(part) if isinstance(live, dict) else None
        else:
            return False
    return bool(parts)


def _claractl_fields(live: dict[str, Any]) -> dict[str, Any]:
    return next((m.get("fieldsV1") or {} for m in (live.get("metadata") or {}).get("managedFields") or []
                 if m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply"), {})


def _removal_patch(live: dict[str, Any], extras: list[tuple[tuple, dict[str, Any]]]) -> list[dict[str, Any]]:
    """A JSON patch removing these keyed-list items from live, each guarded by a `test` of its key
    (the patch fails, changing nothing, if the object moved on meanwhile). Server-side apply cannot
    remove a field another manager also owns; an update can."""
    ops: list[tuple[str, tuple[str, Any]]] = []
    for parts, _item in extras:
        node: Any = live
        pointer = ""
        for part in parts:
            if isinstance(part, tuple):
                index = next(i for i, item in enumerate(node) if isinstance(item, dict) and item.get(part[0]) == part[1])
                node, pointer = node[index], f"{pointer}/{index}"
            else:
                node, pointer = node[part], f"{pointer}/{part.replace('~', '~0').replace('/', '~1')}"
        ops.append((pointer, parts[-1]))
    patch: list[dict[str, Any]] = []
    # Highest index first, so removing one item does not move the next one's index.
    for pointer, (key, value) in sorted(ops, key=lambda o: [int(p) if p.isdigit() else p for p in o[0].split("/")],
                                        reverse=True):
        patch += [{"op": "test", "path": f"{pointer}/{key}", "value": value}, {"op": "remove", "path": pointer}]
    return patch


def _path_text(parts: tuple) -> str:
    return "".join(f"[{p[0]}={p[1]}]" if isinstance(p, tuple) else f".{p}" for p in parts)


class ProxiedPlatformClient(PlatformClient):
    """A PlatformClient whose requests go through the API server's service proxy. Errors the API
    server answers itself (RBAC, no such service, no ready endpoints) name their HTTP status and
    the server's message."""

    def __init__(self, rest: Rest, namespace: str, port: int, token: str | None, timeout: float = 60.0) -> None:
        self._http = platform_client(rest, namespace, port, token=token, timeout=timeout,
                                     event_hooks={"response": [_raise_proxy_status]})
        self.base_url = str(self._http.base_url).rstrip("/")


def _raise_proxy_status(response) -> None:
    status = proxy_status(response)
    if status is not None:
        raise ApiError(response.status_code, f"{status} (the Kubernetes API server's service proxy, "
                                             f"{response.request.method} {response.request.url.path})")


class KubernetesTarget(PlatformObjects, Target):
    type = "kubernetes"

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        kube = project.target.kubernetes or {}
        self.namespace = namespace_of(project)
        self.context = kube.get("context") or None
        self.kubeconfig = kube.get("kubeconfig") or None
        self.force_conflicts = False
        self._rest: Rest | None = None
        self._client: PlatformClient | None = None
        self._manifests: dict[str, dict[str, Any]] | None = None
        self._live: dict[str, dict[str, Any]] = {}          # address → live object, from read_state
        self._lease: LeaseLock | None = None
        self._renewer: threading.Thread | None = None
        self._release = threading.Event()
        self._init_lock = threading.RLock()   # apply threads share one client
        self._platform_lock = threading.Lock()
        self._platform_answered = False

    @property
    def timeout(self) -> float:
        return float(self.wait_timeout or os.environ.get("CLARA_K8S_WAIT_TIMEOUT") or WAIT_TIMEOUT)

    # ---- plumbing -------------------------------------------------------------------------

    def rest(self) -> Rest:
        with self._init_lock:
            if self._rest is None:
                try:
                    self._rest = Rest(load_api_client(self.context, self.kubeconfig))
                except KubeError as exc:
                    raise TargetError(str(exc)) from None
            return self._rest

    def client(self) -> PlatformClient:
        with self._init_lock:
            if self._client is None:
                platform = (self.project.services or {}).get("platform") or {}
                self._client = ProxiedPlatformClient(self.rest(), self.namespace, int(platform.get("api-port", 8765)),
                                                     self._api_token())
            return self._client

    def _namespace_owner(self) -> str | None:
        """The project that owns the namespace ("" = made by someone else), None when it does not exist."""
        try:
            live = self.rest().get(KINDS["Namespace"], None, self.namespace)
        except KubeError as exc:
            raise TargetError(str(exc)) from None
        if live is None:
            return None
        return ((live.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL) or ""

    def _project_token(self) -> str | None:
        token = ((self.project.services or {}).get("platform") or {}).get("api-token")
        return plain(token) if token else None

    def _api_token(self) -> str | None:
        """The platform's API token: the project's, else the one claractl generated into its Secret."""
        return self._project_token() or self._generated("token")

    def _generated(self, what: str) -> str | None:
        """The value in a Secret claractl generated on the first apply ("token": the API token,
        "password": the project's PostgreSQL); kept, as a new one would lock the platform out."""
        name, key = {"token": (TOKEN_SECRET, "token"), "password": (POSTGRESQL_SECRET, "password")}[what]
        try:
            secret = self.rest().get(KINDS["Secret"], self.namespace, name)
        except KubeError as exc:
            raise TargetError(str(exc)) from None
        value = ((secret or {}).get("data") or {}).get(key)
        return base64.b64decode(value).decode() if value else None

    def manifests(self) -> dict[str, dict[str, Any]]:
        """address → rendered manifest with real values (rendered once per run)."""
        if self._manifests is None:
            try:
                objects = desired_objects(self.project, reveal_secrets=True)
            except (KubeError, HelmError) as exc:
                raise TargetError(str(exc)) from None
            manifests = {o.address: o.manifest for o in objects}
            generated = []
            if self._namespace_owner() in (None, self.project.name):     # missing, or made by claractl for us
                generated.append(namespace_object(self.project))
            if not self._project_token():       # no token in the project: claractl makes one
                generated.append(generated_token_secret(self.project, self._generated("token")
                                                        or secrets.token_urlsafe(32)))
            if own_postgresql(self.project):    # hex: the password goes into the database URL as it is
                generated.append(generated_secret(self.project, "postgresql", POSTGRESQL_SECRET, "password",
                                                  self._generated("password") or secrets.token_hex(24)))
            for obj in generated:
                manifests[obj.address] = obj.manifest
            self._manifests = manifests
        return self._manifests

    # ---- Target ---------------------------------------------------------------------------

    def desired(self) -> dict[str, Resource]:
        base = super().desired()
        out = {a: r for a, r in base.items() if addr.kind_of(a) != "service"}
        for address, manifest in self.manifests().items():
            out[address] = Resource(address, _fields(normalize_for_diff(manifest)))
        return out

    def read_state(self) -> ActualState:
        state = ActualState()
        rest = self.rest()
        manifests = self.manifests()
        self._live = {}
        try:
            live = read_inventory(rest, self.namespace, self.project.name)
            present = set()
            for obj in live:
                labels = obj["metadata"].get("labels") or {}
                address = f"service.{labels.get(SERVICE_LABEL) or 'unknown'}/{obj['kind']}/{obj['metadata']['name']}"
                self._live[address] = obj
                present.add(address)
                state.add(ActualObject(address, self._live_fields(address, obj), labels.get(PROJECT_LABEL),
                                       unready=self._unready(obj)))
            # A name the project would create may be taken by hand or by another project: the plan
            # must refuse it, so read those few by name (no reads when nothing is new). The
            # namespace, cluster-scoped, is no inventory kind: it is always read by name.
            for address, manifest in manifests.items():
                if address in present or address in self._live:
                    continue
                kind = KINDS[manifest["kind"]]
                other = rest.get(kind, self.namespace if kind.namespaced else None, manifest["metadata"]["name"])
                if other is not None:
                    owner = ((other.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL) or ""
                    state.add(ActualObject(address, self._live_fields(address, other), owner))
        except KubeError as exc:
            raise TargetError(str(exc)) from None
        self._read_platform(state, present)
        return state

    def _unready(self, live: dict[str, Any]) -> str | None:
        """Why an object whose fields may match is not done: being deleted, or a workload not ready."""
        meta = live.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            held = f", held by finalizer {', '.join(meta['finalizers'])}" if meta.get("finalizers") else ""
            return f"being deleted{held}; apply waits until it is gone, then creates it again"
        if live.get("kind") not in rules.WAITED_KINDS:
            return None
        try:
            ready, reason = readiness(live)
        except KubeError as exc:               # a failed Job, an exceeded progress deadline
            return f"not ready: {exc}"
        if ready:
            return None
        return "not ready: " + "; ".join([reason] + pod_problems(self.rest(), live))

    def _live_fields(self, address: str, live: dict[str, Any]) -> dict[str, Any]:
        like = self.manifests().get(address)
        if like is None:             # no longer rendered (to be pruned): show what is there
            return _fields(normalize_for_diff(live))
        return _fields(project_like(live, normalize_for_diff(like)))

    def _read_platform(self, state: ActualState, present: set[str]) -> None:
        """Platform objects through the service proxy; none yet when the platform isn't up."""
        deployed = any(a.startswith("service.platform/Deployment/") for a in present)
        if not deployed:
            if self._has_platform_objects():
                state.notes.append("the platform is not deployed yet: its models, pipelines, AE titles, "
                                   "sources and destinations are planned as creates")
            return
        try:
            self.read_platform_objects(state)
        except TargetError as exc:
            for a in [a for a in state.objects if not a.startswith("service.")]:
                del state.objects[a]
            state.notes.append(f"the platform API is not reachable through the service proxy ({exc}); "
                               "its objects are planned as creates and applied once it is available")

    def _has_platform_objects(self) -> bool:
        p = self.project
        return bool(p.models or p.pipelines or p.ae_titles or p.sources or p.destinations)

    def refine(self, change: Change) -> None:
        """Change groups; updates of immutable fields become replaces; drift names its manager."""
        if addr.kind_of(change.address) != "service":
            return super().refine(change)
        kind = change.address.split("/")[1]
        change.group = rules.change_group(kind)
        if change.action == UPDATE and change.diffs:
            reason = rules.replace_reason(kind, [d.parts for d in change.diffs])
            if reason:
                change.action, change.reason = REPLACE, reason
                return
        super().refine(change)

    def change_note(self, change: Change) -> str | None:
        """Which pods the update rolls, and who changed a drifted field (or added list items): a
        plain apply stops at that conflict."""
        manifest = self.manifests().get(change.address)
        notes = [rules.rollout_note(manifest, [d.parts for d in change.diffs]) if manifest else None,
                 self._drift_note(change)]
        return "; ".join(n for n in notes if n) or None

    def _drift_note(self, change: Change) -> str | None:
        live = self._live.get(change.address)
        if live is None:
            return None
        found: dict[str, list[str]] = {}
        for diff in change.diffs:
            for manager, fields in _managers(live):
                if _owns(fields, diff.parts, live):
                    verb = "added" if diff.kind == "remove" else "changed"
                    found.setdefault(f"{verb} by {manager!r}", []).append(diff.path)
        if not found:
            return None
        who = "; ".join(f"{', '.join(paths)} {by}" for by, paths in found.items())
        return f"{who} — apply reports a conflict unless run with --force-conflicts"

    def apply_change(self, change: Change, desired: Resource | None) -> None:
        kind, name = addr.split(change.address)
        if change.action != DELETE and desired is None:
            raise TargetError(f"{change.address}: not in the project any more")
        if kind != "service":
            self._wait_for_platform_api(change)
            return self.apply_platform_change(kind, name, change, desired)
        try:
            if change.action == DELETE:
                self._delete_object(change, change.address)
                return
            manifest = self.manifests()[change.address]
            if change.action == REPLACE:
                self._delete_object(change, change.address)
            else:
                self._create_check(change, manifest)
            self._apply(change, manifest)
            if self.wait and manifest["kind"] in rules.WAITED_KINDS:
                wait_ready(self.rest(), manifest, self.timeout,
                           progress=lambda text: self.report(change, text))
        except KubeError as exc:
            raise TargetError(str(exc)) from None

    def _wait_for_platform_api(self, change: Change) -> None:
        """Platform-level changes need the platform: wait (once per apply, up to the timeout) until
        its API answers through the service proxy — also after `--no-wait`, and in the moment a
        ready Deployment's Service endpoints are still being programmed."""
        with self._platform_lock:
            if self._platform_answered:
                return
            deadline = time.monotonic() + self.timeout
            said = None
            while True:
                try:
                    self.client().health_live()
                    self._platform_answered = True
                    return
                except ApiError as exc:
                    why = exc.detail
                if why != said:
                    self.report(change, f"waiting for the platform API: {why}")
                    said = why
                if time.monotonic() >= deadline:
                    raise TargetError(f"the platform API did not answer through the service proxy within "
                                      f"{self.timeout:g}s: {why}")
                time.sleep(1.0)

    def _create_check(self, change: Change, manifest: dict[str, Any]) -> None:
        """Before a create or update: wait out a same-named object still being deleted (it would
        vanish under us); refuse to create over one owned by others."""
        live = self.rest().get(KINDS[manifest["kind"]], self.namespace, manifest["metadata"]["name"])
        if live is not None and live["metadata"].get("deletionTimestamp"):
            wait_gone(self.rest(), manifest, self.timeout, progress=lambda text: self.report(change, text))
            return
        if change.action != CREATE:
            return
        owner = existing_owner(self.rest(), manifest)
        if owner is not None and owner != self.project.name:
            who = f"project {owner!r}" if owner else "someone else (made by hand)"
            raise TargetError(f"{change.address}: already exists and belongs to {who}; "
                              "claractl never takes over objects it does not manage")

    def _apply(self, change: Change, manifest: dict[str, Any]) -> None:
        """Server-side apply. List items another manager added (kubectl set env …) are a conflict,
        reported before anything is written; with --force-conflicts they are removed (a guarded
        JSON patch), then the manifest is applied, taking over changed fields."""
        rest = self.rest()
        kind = KINDS[manifest["kind"]]
        live = rest.get(kind, self.namespace, manifest["metadata"]["name"])
        ours = _claractl_fields(live) if live else {}
        extras = [(parts, item) for parts, item in (extra_items(live, normalize_for_diff(manifest)) if live else [])
                  if not _owns(ours, parts, live)]    # items claractl applied before leave by themselves
        if extras and not self.force_conflicts:
            owners = {m for m, fields in _managers(live) for parts, _ in extras if _owns(fields, parts, live)}
            paths = ", ".join(_path_text(parts) for parts, _ in extras)
            raise TargetError(f"{manifest['kind']}/{manifest['metadata']['name']}: conflict: {paths} "
                              f"added by {', '.join(map(repr, sorted(owners))) or 'another field manager'}; "
                              "rerun with --force-conflicts to take them over and remove them")
        if extras:
            name = manifest["metadata"]["name"]
            rest.call("PATCH", f"{kind.collection(self.namespace)}/{name}", f"remove fields from {kind.kind}/{name}",
                      query=[("fieldManager", FIELD_MANAGER)], body=_removal_patch(live, extras),
                      content_type="application/json-patch+json")
        apply_object(rest, manifest, force_conflicts=self.force_conflicts)

    def _delete_object(self, change: Change, address: str) -> None:
        _service, kind_name, obj_name = address.split("/", 2)
        kind = KINDS.get(kind_name)
        if kind is None:
            raise TargetError(f"{address}: cannot delete a {kind_name} (not a kind claractl manages)")
        obj = {"apiVersion": kind.api_version, "kind": kind.kind,
               "metadata": {"name": obj_name, **({"namespace": self.namespace} if kind.namespaced else {})}}
        delete_object(self.rest(), obj, foreground=kind.kind in FOREGROUND_KINDS)
        if self.wait or change.action == REPLACE:      # a replace must wait: the name is reused
            wait_gone(self.rest(), obj, self.timeout, progress=lambda text: self.report(change, text))

    def after_apply(self, result: ApplyResult) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- lock: a coordination.k8s.io Lease ------------------------------------------------

    def acquire_lock(self, holder: str) -> LockInfo:
        self._ensure_namespace()                  # the Lease lives in it
        identity = re.sub(r"\s+pid\s+", "/pid-", holder).replace(" ", "-")
        lease = LeaseLock(self.rest(), self.namespace, self.project.name,
                          holder=f"{identity}/{os.urandom(4).hex()}", duration_seconds=LEASE_SECONDS)
        try:
            taken = lease.try_acquire()
        except LeaseHeld as held:
            created = datetime.now(timezone.utc) - timedelta(seconds=held.age_seconds)
            raise LockHeld(LockInfo(held.holder, held.holder, created)) from None
        except KubeError as exc:
            raise TargetError(f"cannot take the apply lock: {exc}") from None
        if not taken:                      # lost a race with another run: the caller tries again
            raise LockHeld(LockInfo("?", "an apply that just started", None))
        self._lease = lease
        self._release.clear()
        self._renewer = threading.Thread(target=self._renew, args=(lease,), name="lease-renew", daemon=True)
        self._renewer.start()
        return LockInfo(lease.holder, lease.holder, datetime.now(timezone.utc))

    def _ensure_namespace(self) -> None:
        """Create the project's namespace when it does not exist, labelled as the project's (the
        plan then shows it as managed: `destroy` deletes it last)."""
        if self._namespace_owner() is not None:
            return
        try:
            apply_object(self.rest(), namespace_object(self.project).manifest)
        except KubeError as exc:
            raise TargetError(f"cannot create namespace {self.namespace!r}: {exc}") from None
        self._manifests = None                    # render again: the namespace is ours now

    def _renew(self, lease: LeaseLock) -> None:
        # Applies can wait minutes for Deployments; keep the lease from expiring meanwhile.
        while not self._release.wait(LEASE_SECONDS / 3):
            try:
                lease.renew()
            except KubeError:
                return

    def release_lock(self, lock: LockInfo) -> None:
        self._release.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._lease is not None:
            try:
                self._lease.release()
            except KubeError as exc:
                raise TargetError(f"cannot release the apply lock: {exc}") from None
            self._lease = None

    def force_unlock(self, lock_id: str) -> None:
        try:
            released = lease_force_unlock(self.rest(), self.namespace, self.project.name, lock_id=lock_id)
        except KubeError as exc:
            raise TargetError(str(exc)) from None
        if not released:
            raise TargetError(f"no apply lock is held on {self.scope}")


__all__ = ["KubernetesTarget"]
