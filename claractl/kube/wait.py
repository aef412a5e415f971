"""Wait for applied objects to become ready, kapp-style: a readiness rule per kind (data, in
`RULES`), polled (no watch), with the pod-level reason when a workload is not ready —
ImagePullBackOff, CrashLoopBackOff with the container's last message, `0/1 nodes are available:
1 Insufficient cpu` — so a failed wait says what to fix, not only "0/1 replicas available".

Kinds without a rule are ready once they exist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from claractl.kube.client import KINDS, Rest, kind_of
from claractl.kube.errors import KubeError, WaitTimeout

@dataclass
class Readiness:
    ready: bool
    reason: str            # what is missing, or "available" / "complete"


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj['metadata']['name']}"


def deployment_ready(obj: dict[str, Any]) -> Readiness:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return Readiness(False, "the controller has not seen the latest spec yet")
    conditions = _conditions(obj)
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        raise KubeError(f"{_name(obj)}: {progressing.get('message', 'progress deadline exceeded')}")
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated >= wanted and available >= wanted and total <= wanted \
            and conditions.get("Available", {}).get("status") == "True":
        return Readiness(True, "available")
    if updated < wanted:
        return Readiness(False, f"{updated}/{wanted} replicas updated")
    if total > wanted:
        return Readiness(False, f"{total - updated} old replicas still terminating")
    return Readiness(False, f"{available}/{wanted} replicas available")


def statefulset_ready(obj: dict[str, Any]) -> Readiness:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    wanted = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return Readiness(False, "the controller has not seen the latest spec yet")
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return Readiness(False, f"{status.get('updatedReplicas', 0)}/{wanted} replicas updated")
    if status.get("readyReplicas", 0) >= wanted:
        return Readiness(True, "available")
    return Readiness(False, f"{status.get('readyReplicas', 0)}/{wanted} replicas ready")


def job_ready(obj: dict[str, Any]) -> Readiness:
    conditions = _conditions(obj)
    if conditions.get("Complete", {}).get("status") == "True":
        return Readiness(True, "complete")
    failed = conditions.get("Failed", {})
    if failed.get("status") == "True":
        raise KubeError(f"{_name(obj)} failed: {failed.get('reason', '')} {failed.get('message', '')}".strip())
    status = obj.get("status") or {}
    return Readiness(False, f"{status.get('active', 0)} active, {status.get('succeeded', 0)} succeeded")


# kind → readiness rule. Kinds not listed are ready once they exist.
RULES: dict[str, Callable[[dict[str, Any]], Readiness]] = {
    "Deployment": deployment_ready,
    "StatefulSet": statefulset_ready,
    "Job": job_ready,
}


def readiness(obj: dict[str, Any] | None) -> tuple[bool, str]:
    """(ready, reason) for a live object; `reason` says what is missing when not ready."""
    if obj is None:
        return False, "not found"
    rule = RULES.get(obj.get("kind", ""))
    if rule is None:
        return True, "exists"
    r = rule(obj)
    return r.ready, r.reason


def pod_problems(rest: Rest, obj: dict[str, Any]) -> list[str]:
    """Why the pods of a workload are not ready, one phrase per distinct problem (pod named)."""
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if obj.get("kind") == "Job":
        selector = {"job-name": obj["metadata"]["name"]}
    if not selector:
        return []
    namespace = obj["metadata"].get("namespace")
    try:
        pods = rest.list(KINDS["Pod"], namespace, ",".join(f"{k}={v}" for k, v in sorted(selector.items())))
    except KubeError:
        return []
    problems: dict[str, str] = {}
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        problem = pod_problem(pod)
        if problem:
            problems.setdefault(problem, pod["metadata"]["name"])
    return [f"Pod {name}: {problem}" for problem, name in problems.items()]


def _exited(terminated: dict[str, Any]) -> str:
    reason = terminated.get("message") or terminated.get("reason")
    return f"exited with code {terminated.get('exitCode')}" + (f" ({reason.strip()})" if reason else "")


def pod_problem(pod: dict[str, Any]) -> str | None:
    """The reason one pod is not ready, from its status; None when it is ready."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return f"{scheduled.get('reason', 'Pending')}: {scheduled.get('message', '')}".rstrip(": ")
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        reason = waiting.get("reason")
        if reason and reason not in ("ContainerCreating", "PodInitializing"):
            detail = _exited(last) if reason == "CrashLoopBackOff" and last else waiting.get("message")
            return f"container {cs.get('name')}: {reason}" + (f": {detail}" if detail else "")
        if terminated.get("exitCode"):
            return f"container {cs.get('name')} {_exited(terminated)}"
        if not cs.get("ready") and state.get("running"):
            return f"container {cs.get('name')} is running but not ready (its readiness probe has not passed)"
    ready = conditions.get("Ready", {})
    if ready and ready.get("status") != "True" and ready.get("message"):
        return ready["message"]
    return None


Progress = Callable[[str], None]
# A check of the live object (None: gone): (done, what it waits for now).
Check = Callable[[dict[str, Any] | None], tuple[bool, str]]


def _poll(rest: Rest, obj: dict[str, Any], check: Check, timeout: float, poll: float,
          progress: Progress | None) -> tuple[dict[str, Any] | None, str]:
    """Re-read obj until check says done; progress hears each new state. Returns (live, "") when
    done, or (live, the last state) at the deadline."""
    kind = kind_of(obj)
    namespace = obj["metadata"].get("namespace") if kind.namespaced else None
    deadline = time.monotonic() + timeout
    said = None
    while True:
        live = rest.get(kind, namespace, obj["metadata"]["name"])
        done, state = check(live)
        if done:
            return live, ""
        if progress and state != said:
            progress(state)
        said = state
        if time.monotonic() >= deadline:
            return live, state
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


def wait_ready(rest: Rest, obj: dict[str, Any], timeout: float, poll: float = 0.5,
               progress: Progress | None = None) -> dict[str, Any]:
    """Poll until obj is ready. `progress(text)` hears each new state ("0/1 replicas available;
    Pod x: container y: ImagePullBackOff: …"). WaitTimeout names the object, the last reason and
    its pods' problems."""
    def check(live: dict[str, Any] | None) -> tuple[bool, str]:
        ready, reason = readiness(live)
        problems = [] if ready or live is None or live.get("kind") not in RULES else pod_problems(rest, live)
        return ready, "; ".join([reason] + problems)

    live, state = _poll(rest, obj, check, timeout, poll, progress)
    if state:
        raise WaitTimeout(f"{_name(obj)} not ready after {timeout:g}s: {state}")
    assert live is not None
    return live


def wait_gone(rest: Rest, obj: dict[str, Any], timeout: float, poll: float = 0.5,
              progress: Progress | None = None) -> None:
    """Poll until obj no longer exists; a timeout names what holds it (finalizers)."""
    def check(live: dict[str, Any] | None) -> tuple[bool, str]:
        finalizers = ((live or {}).get("metadata") or {}).get("finalizers") or []
        return live is None, (f"being deleted, held by finalizer {', '.join(finalizers)}" if finalizers
                              else "being deleted")

    live, state = _poll(rest, obj, check, timeout, poll, progress)
    if state:
        finalizers = ((live or {}).get("metadata") or {}).get("finalizers") or []
        hint = " (a pod still uses the claim: it goes when those pods are gone)" \
            if "kubernetes.io/pvc-protection" in finalizers else ""
        raise WaitTimeout(f"{_name(obj)} still present after {timeout:g}s: {state}{hint}")
