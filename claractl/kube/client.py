"""Cluster access: build an ApiClient from kubeconfig or in-cluster config, and a small typed
REST layer (get, list, server-side apply, delete) keyed by apiVersion + kind, so any kind the
charts render is handled the same way without discovery round trips."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from claractl.kube.errors import KubeError, status_of, translate

FIELD_MANAGER = "claractl"


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if self.namespaced else f"{base}/{self.plural}"


# The kinds claractl manages or uses: what the charts render, plus Jobs, Pods and Leases.
KINDS = {k.kind: k for k in [
    Kind("v1", "ConfigMap", "configmaps"),
    Kind("v1", "Secret", "secrets"),
    Kind("v1", "Service", "services"),
    Kind("v1", "ServiceAccount", "serviceaccounts"),
    Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    Kind("v1", "Pod", "pods"),
    Kind("v1", "Namespace", "namespaces", namespaced=False),
    Kind("v1", "PersistentVolume", "persistentvolumes", namespaced=False),
    Kind("apps/v1", "Deployment", "deployments"),
    Kind("apps/v1", "StatefulSet", "statefulsets"),
    Kind("batch/v1", "Job", "jobs"),
    Kind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    Kind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    Kind("networking.k8s.io/v1", "Ingress", "ingresses"),
    Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    Kind("coordination.k8s.io/v1", "Lease", "leases"),
]}
# Kinds listed when reading a project's inventory (what the charts can render).
INVENTORY_KINDS = ["ConfigMap", "Secret", "Service", "ServiceAccount", "PersistentVolumeClaim",
                   "Deployment", "StatefulSet", "Role", "RoleBinding", "Ingress", "PodDisruptionBudget"]


def kind_of(obj: dict[str, Any]) -> Kind:
    kind = KINDS.get(obj.get("kind", ""))
    if kind is None or kind.api_version != obj.get("apiVersion"):
        raise KubeError(f"unsupported object {obj.get('apiVersion')}/{obj.get('kind')}")
    return kind


def load_api_client(context: str | None = None, kubeconfig: str | None = None) -> k8s.ApiClient:
    """kubeconfig ($KUBECONFIG or ~/.kube/config, `context` or its current one); in a pod with no
    kubeconfig, the service account (in-cluster config)."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    first = path.split(os.pathsep)[0]
    if not os.path.exists(first) and os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise KubeError(f"in-cluster config: {exc}") from None
        return _tuned(cfg)
    if not os.path.exists(first):
        raise KubeError(f"no kubeconfig at {first}: set KUBECONFIG or create ~/.kube/config")
    try:
        contexts, _current = k8s_config.list_kube_config_contexts(config_file=first)
        names = [c["name"] for c in contexts]
        if context and context not in names:
            raise KubeError(f"context {context!r} is not in {first} (available: {', '.join(names) or 'none'}); "
                            "fix target.kubernetes.context")
        cfg = k8s.Configuration()
        k8s_config.load_kube_config(config_file=first, context=context or None, client_configuration=cfg)
    except ConfigException as exc:
        raise KubeError(f"kubeconfig {first}: {exc}") from None
    return _tuned(cfg)


def _tuned(cfg: k8s.Configuration) -> k8s.ApiClient:
    cfg.retries = 1                  # an unreachable cluster should fail in seconds, not retry 3x
    return k8s.ApiClient(cfg)


class Rest:
    """Generic object calls over one ApiClient; every failure becomes a one-line KubeError."""

    def __init__(self, api_client: k8s.ApiClient, timeout: float = 30.0) -> None:
        self.api = api_client
        self.timeout = timeout

    @property
    def host(self) -> str:
        return self.api.configuration.host

    def call(self, method: str, path: str, what: str, query: list | None = None, body: Any = None,
             content_type: str = "application/json") -> Any:
        try:
            data, _status, _headers = self.api.call_api(
                path, method, query_params=query or [], body=body,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                response_type="object", auth_settings=["BearerToken"],
                _preload_content=True, _request_timeout=self.timeout)
            return data
        except Exception as exc:  # noqa: BLE001 — translated to one line, nothing swallowed
            raise translate(exc, what, self.host) from None

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException
        try:
            data, _s, _h = self.api.call_api(f"{kind.collection(namespace)}/{name}", "GET",
                                             header_params={"Accept": "application/json"}, response_type="object",
                                             auth_settings=["BearerToken"], _request_timeout=self.timeout)
            return data
        except ApiException as exc:
            details = (status_of(exc).get("details") or {})
            if exc.status == 404 and details.get("name") == name and details.get("kind") == kind.plural:
                return None
            raise translate(exc, f"read {kind.kind}/{name}", self.host) from None
        except Exception as exc:  # noqa: BLE001
            raise translate(exc, f"read {kind.kind}/{name}", self.host) from None

    def list(self, kind: Kind, namespace: str | None, label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        data = self.call("GET", kind.collection(namespace), f"list {kind.plural}", query)
        items = data.get("items") or []
        for item in items:                    # list items come without kind/apiVersion
            item.setdefault("apiVersion", kind.api_version)
            item.setdefault("kind", kind.kind)
        return items
