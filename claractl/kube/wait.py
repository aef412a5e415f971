"""Wait for applied objects to become ready: Deployments available (all replicas of the current
generation), Jobs complete; other kinds are ready once they exist. Polls (no watch) and fails
with the last reason the object reported."""

from __future__ import annotations

import time
from typing import Any

from claractl.kube.client import Rest, kind_of
from claractl.kube.errors import KubeError, WaitTimeout


def readiness(obj: dict[str, Any] | None) -> tuple[bool, str]:
    """(ready, reason) for a live object; `reason` says what is missing when not ready."""
    if obj is None:
        return False, "not found"
    kind = obj.get("kind")
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if kind == "Deployment":
        generation = obj["metadata"].get("generation", 0)
        wanted = (obj.get("spec") or {}).get("replicas", 1)
        if status.get("observedGeneration", 0) < generation:
            return False, "the controller has not seen the latest spec yet"
        available = conditions.get("Available", {})
        if status.get("availableReplicas", 0) >= wanted and status.get("updatedReplicas", 0) >= wanted \
                and available.get("status") == "True":
            return True, "available"
        progressing = conditions.get("Progressing", {})
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            raise KubeError(f"Deployment/{obj['metadata']['name']}: {progressing.get('message', 'progress deadline exceeded')}")
        return False, (available.get("message") or
                       f"{status.get('availableReplicas', 0)}/{wanted} replicas available")
    if kind == "Job":
        if conditions.get("Complete", {}).get("status") == "True":
            return True, "complete"
        failed = conditions.get("Failed", {})
        if failed.get("status") == "True":
            raise KubeError(f"Job/{obj['metadata']['name']} failed: "
                            f"{failed.get('reason', '')} {failed.get('message', '')}".strip())
        return False, f"{status.get('active', 0)} active, {status.get('succeeded', 0)} succeeded"
    return True, "exists"


def wait_ready(rest: Rest, obj: dict[str, Any], timeout: float, poll: float = 0.5) -> dict[str, Any]:
    """Poll until obj is ready; WaitTimeout names the object and its last reason."""
    kind = kind_of(obj)
    namespace = obj["metadata"].get("namespace") if kind.namespaced else None
    deadline = time.monotonic() + timeout
    while True:
        live = rest.get(kind, namespace, obj["metadata"]["name"])
        ready, reason = readiness(live)
        if ready:
            return live
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{obj['kind']}/{obj['metadata']['name']} not ready after {timeout:g}s: {reason}")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
