"""One apply at a time per project: a coordination.k8s.io/v1 Lease named claractl-<project>
(see lease_name).

Taking the lock is a create (or, when the lease expired or is free, an update guarded by
resourceVersion), so two runs racing for it cannot both win: the API server answers one of them
409. The holder renews while it works (`renew()`); an expired lease can be taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import time
import uuid
from typing import Any

from claractl.kube.client import KINDS, Rest
from claractl.kube.errors import KubeError, LockHeld

LEASE = KINDS["Lease"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


def lease_name(project: str) -> str:
    """claractl-<project> as a DNS name: project names may hold capitals and "_" (the project
    schema allows them), object names may not; a short digest keeps sanitised names distinct."""
    clean = re.sub(r"[^a-z0-9.-]", "-", project.lower()).strip("-.") or "project"
    if clean != project:
        clean = f"{clean[:50]}-{hashlib.sha256(project.encode()).hexdigest()[:8]}"
    return f"claractl-{clean}"


def default_holder() -> str:
    return f"{os.environ.get('USER', 'claractl')}@{socket.gethostname()}/{uuid.uuid4().hex[:8]}"


class LeaseLock:
    def __init__(self, rest: Rest, namespace: str, project: str, holder: str | None = None,
                 duration_seconds: int = 60) -> None:
        self.rest, self.namespace = rest, namespace
        self.name = lease_name(project)
        self.holder = holder or default_holder()
        self.duration = duration_seconds
        self._rv: str | None = None

    def _path(self) -> str:
        return f"{LEASE.collection(self.namespace)}/{self.name}"

    def _body(self, resource_version: str | None, acquired: dt.datetime) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                "labels": {"app.kubernetes.io/managed-by": "claractl"}}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": self.duration,
                         "acquireTime": _micro(acquired), "renewTime": _micro(_now())}}

    def try_acquire(self) -> bool:
        """Take the lease if free or expired; raise LockHeld if someone else holds it."""
        live = self.rest.get(LEASE, self.namespace, self.name)
        if live is None:
            try:
                created = self.rest.call("POST", LEASE.collection(self.namespace), f"create Lease/{self.name}",
                                         body=self._body(None, _now()))
            except KubeError as exc:
                if "already exists" in str(exc):
                    return False               # lost the race; the caller retries
                raise
            self._rv = created["metadata"]["resourceVersion"]
            return True
        spec = live.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
        expired = renewed is None or (_now() - renewed).total_seconds() > spec.get("leaseDurationSeconds", self.duration)
        if holder and holder != self.holder and not expired:
            acquired = _parse(spec.get("acquireTime")) or renewed
            raise LockHeld(self.name, holder, (_now() - acquired).total_seconds() if acquired else 0.0)
        try:
            updated = self.rest.call("PUT", self._path(), f"take Lease/{self.name}",
                                     body=self._body(live["metadata"]["resourceVersion"], _now()))
        except KubeError as exc:
            if "has been modified" in str(exc):
                return False
            raise
        self._rv = updated["metadata"]["resourceVersion"]
        return True

    def acquire(self, timeout: float = 0.0, poll: float = 1.0) -> "LeaseLock":
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.try_acquire():
                    return self
            except LockHeld:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(poll)

    def renew(self) -> None:
        live = self.rest.get(LEASE, self.namespace, self.name)
        if live is None or (live.get("spec") or {}).get("holderIdentity") != self.holder:
            raise KubeError(f"lock {self.name} was taken from {self.holder!r}")
        body = self._body(live["metadata"]["resourceVersion"],
                          _parse(live["spec"].get("acquireTime")) or _now())
        self._rv = self.rest.call("PUT", self._path(), f"renew Lease/{self.name}", body=body)["metadata"]["resourceVersion"]

    def release(self) -> None:
        """Delete the lease if this holder still has it (guarded by resourceVersion)."""
        live = self.rest.get(LEASE, self.namespace, self.name)
        if live is None or (live.get("spec") or {}).get("holderIdentity") != self.holder:
            return
        self.rest.call("DELETE", self._path(), f"release Lease/{self.name}",
                       body={"kind": "DeleteOptions", "apiVersion": "v1",
                             "preconditions": {"resourceVersion": live["metadata"]["resourceVersion"]}})

    def __enter__(self) -> "LeaseLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def force_unlock(rest: Rest, namespace: str, project: str, lock_id: str | None = None) -> bool:
    """Delete the project's lease; with `lock_id` (the holder identity shown in LockHeld) only if
    that holder still has it. False if there was no lease."""
    name = lease_name(project)
    live = rest.get(LEASE, namespace, name)
    if live is None:
        return False
    holder = (live.get("spec") or {}).get("holderIdentity") or ""
    if lock_id is not None and holder != lock_id:
        raise KubeError(f"lock {name} is held by {holder!r}, not {lock_id!r}; nothing released")
    rest.call("DELETE", f"{LEASE.collection(namespace)}/{name}", f"force-unlock Lease/{name}",
              body={"kind": "DeleteOptions", "apiVersion": "v1",
                    "preconditions": {"resourceVersion": live["metadata"]["resourceVersion"]}})
    return True
