"""How the kubernetes target orders, waits for and replaces objects — as data, kapp-style.

- `CHANGE_GROUPS`: kind → group. Creates and updates run group by group (what others reference
  first: RBAC, config, storage; then Services; then the workloads that use them); deletes run the
  groups in reverse. Objects of one group run in parallel.
- `WAITED_KINDS`: kinds an apply waits for (readiness rules in claractl/kube/wait.py).
- `IMMUTABLE`: fields the API server refuses to change in place (422); a change to one plans as
  a replace (delete, wait until gone, create) with the reason shown.
"""

from __future__ import annotations

CHANGE_GROUPS = {
    "Namespace": 0, "ServiceAccount": 0, "Role": 0, "RoleBinding": 0, "ConfigMap": 0, "Secret": 0,
    "PersistentVolumeClaim": 0, "PodDisruptionBudget": 0, "Lease": 0,
    "Service": 1, "Ingress": 1,
    "Deployment": 2, "StatefulSet": 2, "Job": 2,
}
LAST_GROUP = 2

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
