"""How the kubernetes target orders, waits for and replaces objects — as data, kapp-style.

- `CHANGE_GROUPS`: kind → group. Creates and updates run group by group (what others reference
  first: the namespace claractl made; RBAC, config, storage; then Services; then stateful
  backends (the PostgreSQL StatefulSet); then the workloads that use them); deletes run the
  groups in reverse. Objects of one group run in parallel.
- `WAITED_KINDS`: kinds an apply waits for (readiness rules in claractl/kube/wait.py).
- `IMMUTABLE`: fields the API server refuses to change in place (422); a change to one plans as
  a replace (delete, wait until gone, create) with the reason shown.
- `rollout_note`: which pods an update restarts, and how (`plan` shows it with the change).
"""

from __future__ import annotations

CHANGE_GROUPS = {
    "Namespace": 0,                   # only when claractl made it: created first, deleted last
    "ServiceAccount": 1, "Role": 1, "RoleBinding": 1, "ConfigMap": 1, "Secret": 1,
    "PersistentVolumeClaim": 1, "PodDisruptionBudget": 1, "Lease": 1,
    "Service": 2, "Ingress": 2,
    "StatefulSet": 3,                 # databases: ready before the workloads that connect to them
    "Deployment": 4, "Job": 4,
}
LAST_GROUP = 4

WAITED_KINDS = ("Deployment", "StatefulSet", "Job")

# kind → [(field path prefix, why it cannot change)]; a path matches itself and anything under it.
IMMUTABLE: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "PersistentVolumeClaim": [
        (("spec", "storageClassName"), "a PersistentVolumeClaim's storage class cannot change (its data is lost)"),
        (("spec", "accessModes"), "a PersistentVolumeClaim's access modes cannot change (its data is lost)"),
        (("spec", "volumeName"), "a PersistentVolumeClaim's volume cannot change (its data is lost)"),
        (("spec", "volumeMode"), "a PersistentVolumeClaim's volume mode cannot change (its data is lost)"),
        (("spec", "selector"), "a PersistentVolumeClaim's selector cannot change (its data is lost)"),
        (("spec", "dataSource"), "a PersistentVolumeClaim's data source cannot change (its data is lost)"),
    ],
    "Job": [
        (("spec", "template"), "a Job's pod template cannot change"),
        (("spec", "selector"), "a Job's selector cannot change"),
        (("spec", "completionMode"), "a Job's completion mode cannot change"),
    ],
    "Service": [
        (("spec", "clusterIP"), "a Service's clusterIP cannot change (e.g. between headless and not)"),
        (("spec", "clusterIPs"), "a Service's clusterIPs cannot change"),
    ],
    "Deployment": [(("spec", "selector"), "a Deployment's selector cannot change")],
    "StatefulSet": [
        (("spec", "selector"), "a StatefulSet's selector cannot change"),
        (("spec", "serviceName"), "a StatefulSet's serviceName cannot change"),
        (("spec", "volumeClaimTemplates"), "a StatefulSet's volumeClaimTemplates cannot change"),
        (("spec", "podManagementPolicy"), "a StatefulSet's podManagementPolicy cannot change"),
    ],
    "RoleBinding": [(("roleRef",), "a RoleBinding's roleRef cannot change")],
}


def change_group(kind: str) -> int:
    return CHANGE_GROUPS.get(kind, LAST_GROUP)


def replace_reason(kind: str, paths: list[tuple]) -> str | None:
    """Why a change to these field paths (key parts) needs a replace, or None."""
    for prefix, why in IMMUTABLE.get(kind, []):
        for parts in paths:
            if tuple(parts[:len(prefix)]) == prefix:
                return f"{why}: .{'.'.join(prefix)}"
    return None


def rollout_note(manifest: dict, paths: list[tuple]) -> str | None:
    """What an update of these field paths does to running pods: a change under the pod template
    (the platform's settings are in its checksum annotation) replaces every pod of a workload."""
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind not in ("Deployment", "StatefulSet") or not any(tuple(p[:2]) == ("spec", "template") for p in paths):
        return None
    name, replicas = manifest["metadata"]["name"], int(spec.get("replicas", 1))
    pods = f"{replicas} pod{'s' if replicas != 1 else ''}"
    if kind == "StatefulSet":
        return f"restarts its {pods} one at a time ({name} is down while {'each' if replicas > 1 else 'it'} restarts)"
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return f"restarts its pod: {name} is down until the new pod is ready (strategy Recreate)"
    unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if unavailable in (0, "0", "0%"):
        return f"rolls {pods} one at a time, each new pod ready before an old one stops ({name} stays up)"
    return f"rolls {pods}, up to {unavailable} of them unavailable at a time"
