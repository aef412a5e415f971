"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

    elector = LeaderElector(rest, namespace, "clara-engine", identity="pod-abc/1f2e")
    elector.run(on_started, on_stopped, stop)       # blocks until `stop` is set

- **Acquire**: create the Lease, or take it over (an update guarded by resourceVersion, so of two
  candidates only one wins) when it has no holder or its holder stopped renewing.
- **Expiry without clocks**: a candidate never compares the holder's `renewTime` with its own
  clock (nodes' clocks differ); it notes, on its own monotonic clock, when it last saw the lease
  record change, and counts the holder gone `leaseDurationSeconds` after that.
- **A restarted holder takes over at once**: identities are `<pod>/<process>`; a holder with this
  candidate's pod and another process is this container before it crashed and was restarted
  (a pod's container restarts only after it exited), so its lease need not expire.
- **Renew** every `lease_seconds / 3` (after a failure every `retry_seconds`); leadership is **lost** when no renewal succeeded for
  `2/3 × lease_seconds` — before any candidate can see the lease expire — so two leaders never
  act at once while clocks run at the same rate.
- **Release** on a clean stop: the lease is deleted (precondition: still ours), so a standby takes
  over at its next retry (`retry_seconds`) instead of waiting for the expiry.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from claractl.kube.client import Rest
from claractl.kube.errors import KubeError
from claractl.kube.lock import LEASE, _micro, _now

log = logging.getLogger("claractl.kube.elector")


class LeaderElector:
    def __init__(self, rest: Rest, namespace: str, name: str, identity: str, lease_seconds: float = 15.0,
                 retry_seconds: float = 2.0, labels: dict[str, str] | None = None) -> None:
        self.rest, self.namespace, self.name, self.identity = rest, namespace, name, identity
        self.lease_seconds = float(lease_seconds)
        self.renew_every = self.lease_seconds / 3
        self.renew_deadline = self.lease_seconds * 2 / 3
        self.retry_seconds = retry_seconds
        self.labels = labels or {"app.kubernetes.io/managed-by": "claractl-platform"}
        self.leading = False
        self.holder = ""                     # the last holder seen (for status)
        self._rv: str | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    # ---- one step each ------------------------------------------------------------------------
    def _path(self) -> str:
        return f"{LEASE.collection(self.namespace)}/{self.name}"

    def _body(self, resource_version: str | None, transitions: int, acquired: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "labels": self.labels}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, round(self.lease_seconds)),
                         "acquireTime": acquired, "renewTime": _micro(_now()), "leaseTransitions": transitions}}

    def try_acquire(self) -> bool:
        """One attempt: True when this candidate now holds the lease."""
        live = self.rest.get(LEASE, self.namespace, self.name)
        if live is None:
            try:
                created = self.rest.call("POST", LEASE.collection(self.namespace), f"create Lease/{self.name}",
                                         body=self._body(None, 0, _micro(_now())))
            except KubeError as exc:
                if "already exists" in str(exc).lower():
                    return False                       # another candidate was quicker
                raise
            self._rv = created["metadata"]["resourceVersion"]
            self.holder = self.identity
            return True
        spec = live.get("spec") or {}
        self.holder = spec.get("holderIdentity") or ""
        record = (self.holder, spec.get("renewTime"), live["metadata"]["resourceVersion"])
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        expired = time.monotonic() - self._observed_at > duration or self._predecessor(self.holder)
        if self.holder and self.holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (self.holder != self.identity)
        try:
            updated = self.rest.call("PUT", self._path(), f"take Lease/{self.name}",
                                     body=self._body(live["metadata"]["resourceVersion"], transitions,
                                                     _micro(_now())))
        except KubeError as exc:
            if "modified" in str(exc).lower() or "not found" in str(exc).lower():
                return False                           # someone else wrote it first
            raise
        self._rv = updated["metadata"]["resourceVersion"]
        log.info("leader election: %s took Lease %s/%s from %r", self.identity, self.namespace, self.name,
                 self.holder or "(nobody)")
        self.holder = self.identity
        return True

    def _predecessor(self, holder: str) -> bool:
        """The holder is an earlier process of this candidate's pod (see the module doc)."""
        pod, sep, _process = self.identity.partition("/")
        return bool(sep) and holder.startswith(pod + "/") and holder != self.identity

    def renew(self) -> bool:
        """Extend our lease; False when it is no longer ours (taken or deleted)."""
        live = self.rest.get(LEASE, self.namespace, self.name)
        if live is None or (live.get("spec") or {}).get("holderIdentity") != self.identity:
            return False
        spec = live["spec"]
        body = self._body(live["metadata"]["resourceVersion"], int(spec.get("leaseTransitions") or 0),
                          spec.get("acquireTime") or _micro(_now()))
        self._rv = self.rest.call("PUT", self._path(), f"renew Lease/{self.name}", body=body)["metadata"]["resourceVersion"]
        return True

    def release(self) -> None:
        """Give the lease up at once (only if still ours): a standby need not wait for it to expire."""
        try:
            live = self.rest.get(LEASE, self.namespace, self.name)
            if live is None or (live.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            self.rest.call("DELETE", self._path(), f"release Lease/{self.name}",
                           body={"kind": "DeleteOptions", "apiVersion": "v1",
                                 "preconditions": {"resourceVersion": live["metadata"]["resourceVersion"]}})
            log.info("leader election: %s released Lease %s/%s", self.identity, self.namespace, self.name)
        except KubeError as exc:
            log.warning("leader election: could not release Lease %s/%s (it expires by itself): %s",
                        self.namespace, self.name, exc)

    # ---- the loop -----------------------------------------------------------------------------
    def run(self, on_started: Callable[[], None], on_stopped: Callable[[], None], stop: threading.Event) -> None:
        """Campaign until leading, call on_started() (it must return quickly: renewals wait for
        it), renew until `stop` is set or leadership is lost; then on_stopped(), and release the
        lease unless it was lost. Returns when done."""
        while not stop.is_set():
            try:
                if self.try_acquire():
                    break
            except KubeError as exc:
                log.warning("leader election: %s", exc)
            stop.wait(self.retry_seconds)
        if stop.is_set():
            return
        self.leading = True
        log.info("leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
        on_started()
        last_renewed = time.monotonic()
        lost = False
        wait = self.renew_every
        while not stop.wait(wait):
            wait = self.retry_seconds          # after a failure, try again sooner
            try:
                if self.renew():
                    last_renewed, wait = time.monotonic(), self.renew_every
                    continue
                log.error("leader election: Lease %s/%s is no longer held by %s", self.namespace, self.name,
                          self.identity)
                lost = True
                break
            except Exception as exc:  # noqa: BLE001 — whatever broke, an unrenewed lease must end the leadership
                log.warning("leader election: renewal failed: %s", exc)
            if time.monotonic() - last_renewed > self.renew_deadline:
                log.error("leader election: no renewal for %.0f s; %s steps down", self.renew_deadline, self.identity)
                lost = True
                break
        self.leading = False
        on_stopped()
        if not lost:
            self.release()


__all__ = ["LeaderElector"]
