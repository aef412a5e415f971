"""The kubernetes target: the project's services as Helm-rendered objects applied with
server-side apply, and its platform-level objects through the platform API behind the API
server's service proxy.

Addresses: each service expands into its rendered objects, `service.triton/Deployment/clara-triton`;
models, pipelines, AE titles, sources and destinations keep their usual addresses. The fields of
an object are its manifest without server-populated parts; the live side is cut to the fields
the manifest sets (kubectl diff --server-side), so only what claractl manages can differ.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from claractl.plan import ActualObject, ActualState, ApplyResult, Change, Resource, TargetError
from claractl.plan import address as addr
from claractl.plan.model import CREATE, DELETE, REPLACE
from claractl.plan.secrets import plain
from claractl.platform.client import PlatformClient
from claractl.project.model import Project, Secret
from claractl.targets.base import LockHeld, LockInfo, Target
from claractl.kube.apply import apply_object, delete_object, existing_owner
from claractl.kube.client import FIELD_MANAGER, KINDS, Rest, load_api_client
from claractl.kube.diff import normalize_for_diff, project_like
from claractl.kube.errors import KubeError
from claractl.kube.errors import LockHeld as LeaseHeld
from claractl.kube.inventory import read_inventory
from claractl.kube.lock import LeaseLock
from claractl.kube.lock import force_unlock as lease_force_unlock
from claractl.targets.kubernetes.manifests import PROJECT_LABEL, SERVICE_LABEL, desired_objects
from claractl.kube.proxy import platform_client
from claractl.targets.kubernetes.values import namespace_of
from claractl.kube.wait import wait_ready
from claractl.targets.platform_objects import PlatformObjects

WAIT_TIMEOUT = 300.0       # seconds for a Deployment to become available (CLARA_K8S_WAIT_TIMEOUT)
WAITED_KINDS = ("Deployment", "StatefulSet", "Job")
LEASE_SECONDS = 60


def _wrap_secret_data(fields: dict[str, Any]) -> dict[str, Any]:
    """Secret values as `Secret`s: compared by value, shown and hashed as "(sensitive)"."""
    if fields.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(fields.get(key), dict):
                fields[key] = {k: Secret("kubernetes", str(v)) for k, v in fields[key].items()}
    return fields


def _other_managers(live: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(manager, fieldsV1) of every field manager but claractl (status writers excluded)."""
    return [(m.get("manager", "?"), m.get("fieldsV1") or {})
            for m in (live.get("metadata") or {}).get("managedFields") or []
            if m.get("manager") != FIELD_MANAGER and not m.get("subresource")]


def _owns(fields: dict[str, Any], path: list[str]) -> bool:
    """Whether a FieldsV1 set holds `path` (or a field under it, for list items)."""
    node: Any = fields
    for part in path:
        if not isinstance(node, dict) or f"f:{part}" not in node:
            return False
        node = node[f"f:{part}"]
    return bool(path)


class ProxiedPlatformClient(PlatformClient):
    """A PlatformClient whose requests go through the API server's service proxy."""

    def __init__(self, rest: Rest, namespace: str, port: int, token: str | None, timeout: float = 60.0) -> None:
        self._http = platform_client(rest, namespace, port, token=token, timeout=timeout)
        self.base_url = str(self._http.base_url).rstrip("/")


class KubernetesTarget(PlatformObjects, Target):
    type = "kubernetes"

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        kube = project.target.kubernetes or {}
        self.namespace = namespace_of(project)
        self.context = kube.get("context") or None
        self.kubeconfig = kube.get("kubeconfig") or None
        self.force_conflicts = False
        self.wait_timeout = float(os.environ.get("CLARA_K8S_WAIT_TIMEOUT") or WAIT_TIMEOUT)
        self._rest: Rest | None = None
        self._client: PlatformClient | None = None
        self._manifests: dict[str, dict[str, Any]] | None = None
        self._lease: LeaseLock | None = None
        self._other_managers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._renewer: threading.Thread | None = None
        self._release = threading.Event()
        self._init_lock = threading.RLock()   # apply threads share one client

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
                services = self.project.services or {}
                platform = services.get("platform") or {}
                token = platform.get("api-token")
                self._client = ProxiedPlatformClient(self.rest(), self.namespace,
                                                     int(platform.get("api-port", 8765)),
                                                     plain(token) if token else None)
            return self._client

    def manifests(self) -> dict[str, dict[str, Any]]:
        """address → rendered manifest with real values (rendered once per run)."""
        if self._manifests is None:
            try:
                objects = desired_objects(self.project, reveal_secrets=True)
            except KubeError as exc:
                raise TargetError(str(exc)) from None
            self._manifests = {o.address: o.manifest for o in objects}
        return self._manifests

    # ---- Target ---------------------------------------------------------------------------

    def desired(self) -> dict[str, Resource]:
        base = super().desired()
        out = {a: r for a, r in base.items() if addr.kind_of(a) != "service"}
        for address, manifest in self.manifests().items():
            out[address] = Resource(address, _wrap_secret_data(normalize_for_diff(manifest)))
        return out

    def read_state(self) -> ActualState:
        state = ActualState()
        rest = self.rest()
        manifests = self.manifests()
        try:
            live = read_inventory(rest, self.namespace, self.project.name)
            present = set()
            for obj in live:
                labels = obj["metadata"].get("labels") or {}
                service = labels.get(SERVICE_LABEL) or "unknown"
                address = f"service.{service}/{obj['kind']}/{obj['metadata']['name']}"
                present.add(address)
                state.add(ActualObject(address, self._live_fields(address, obj), labels.get(PROJECT_LABEL)))
                self._other_managers[address] = _other_managers(obj)
            # A name the project would create may be taken by hand or by another project: the plan
            # must refuse it, so read those few by name (no reads when nothing is new).
            for address, manifest in manifests.items():
                if address in present:
                    continue
                kind = KINDS[manifest["kind"]]
                other = rest.get(kind, self.namespace, manifest["metadata"]["name"])
                if other is not None:
                    owner = ((other.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL) or ""
                    state.add(ActualObject(address, self._live_fields(address, other), owner))
        except KubeError as exc:
            raise TargetError(str(exc)) from None
        self._read_platform(state, present)
        return state

    def _live_fields(self, address: str, live: dict[str, Any]) -> dict[str, Any]:
        like = self.manifests().get(address)
        if like is None:             # no longer rendered (to be pruned): show what is there
            return _wrap_secret_data(normalize_for_diff(live))
        return _wrap_secret_data(project_like(live, normalize_for_diff(like)))

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

    def apply_change(self, change: Change, desired: Resource | None) -> None:
        kind, name = addr.split(change.address)
        if change.action != DELETE and desired is None:
            raise TargetError(f"{change.address}: not in the project any more")
        if kind != "service":
            return self.apply_platform_change(kind, name, change, desired)
        try:
            if change.action == DELETE:
                self._delete_object(change.address)
                return
            manifest = self.manifests()[change.address]
            if change.action in (CREATE, REPLACE):
                owner = existing_owner(self.rest(), manifest)
                if owner is not None and owner != self.project.name and change.action == CREATE:
                    who = f"project {owner!r}" if owner else "someone else (made by hand)"
                    raise TargetError(f"{change.address}: already exists and belongs to {who}; "
                                      "claractl never takes over objects it does not manage")
            apply_object(self.rest(), manifest, force_conflicts=self.force_conflicts)
            if manifest["kind"] in WAITED_KINDS:
                wait_ready(self.rest(), manifest, self.wait_timeout)
        except KubeError as exc:
            raise TargetError(str(exc)) from None

    def _delete_object(self, address: str) -> bool:
        _service, kind_name, obj_name = address.split("/", 2)
        kind = KINDS.get(kind_name)
        if kind is None:
            raise TargetError(f"{address}: cannot delete a {kind_name} (not a kind claractl manages)")
        return delete_object(self.rest(), {"apiVersion": kind.api_version, "kind": kind.kind,
                                           "metadata": {"name": obj_name, "namespace": self.namespace}})

    def change_note(self, change: Change) -> str | None:
        """Name who changed a drifted field: a plain apply stops at that conflict."""
        owners = self._other_managers.get(change.address) or []
        found: dict[str, list[str]] = {}
        for diff in change.diffs:
            path = [p for p in diff.path.split("[", 1)[0].split(".") if p]
            for manager, fields in owners:
                if _owns(fields, path):
                    found.setdefault(manager, []).append("." + diff.path)
        if not found:
            return None
        who = "; ".join(f"{', '.join(paths)} changed by {m!r}" for m, paths in found.items())
        return f"{who} — apply reports a conflict unless run with --force-conflicts"

    def after_apply(self, result: ApplyResult) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- lock: a coordination.k8s.io Lease ------------------------------------------------

    def acquire_lock(self, holder: str) -> LockInfo:
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
