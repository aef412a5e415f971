"""The kubernetes target: Helm rendering, inventory, server-side apply, waiting, the Lease lock.

Public surface for the plan engine:
- `desired_objects(project, reveal_secrets)` → rendered, inventory-labelled objects per service
- `load_api_client(context)` + `Rest(api_client)`; `read_inventory(rest, namespace, project)`
- `field_changes(desired, live)` / `normalize_for_diff(obj, like)` — what differs, kubectl-diff style
- `apply_object(rest, obj, force_conflicts)`, `delete_object(rest, obj)`, `existing_owner(rest, obj)`
  (check before a create: a same-named object of another project or made by hand), `wait_ready(rest, obj, timeout)`
- `LeaseLock(rest, namespace, project)`, `force_unlock(rest, namespace, project)`
- `platform_client(rest, namespace, port, token)` → httpx client for the platform API via the service proxy
- errors: `KubeError` (one line), `ApplyConflict`, `LockHeld`, `WaitTimeout`
"""

from claractl.kube.apply import apply_object, delete_object, existing_owner
from claractl.kube.client import KINDS, Rest, load_api_client
from claractl.kube.diff import field_changes, normalize_for_diff
from claractl.kube.errors import ApplyConflict, KubeError, LockHeld, WaitTimeout
from claractl.kube.inventory import read_inventory
from claractl.kube.lock import LeaseLock, force_unlock
from claractl.kube.proxy import platform_base_url, platform_client
from claractl.targets.kubernetes.manifests import DesiredObject, desired_objects, object_address
from claractl.targets.kubernetes.values import values_for
from claractl.kube.wait import readiness, wait_ready

__all__ = [
    "ApplyConflict", "DesiredObject", "KINDS", "KubeError", "LeaseLock", "LockHeld", "Rest", "WaitTimeout",
    "apply_object", "delete_object", "existing_owner", "desired_objects", "field_changes", "force_unlock", "load_api_client",
    "normalize_for_diff", "object_address", "platform_base_url", "platform_client", "read_inventory", "readiness", "values_for", "wait_ready",
]


def __getattr__(name: str):
    # The target pulls in the plan engine; load it only when asked for (get_target).
    if name == "KubernetesTarget":
        from claractl.targets.kubernetes.target import KubernetesTarget
        return KubernetesTarget
    raise AttributeError(name)
