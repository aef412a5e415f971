"""The kinds the stand-in serves, their REST names, and small honest pieces of server behaviour:
validation (422), defaulting, label selectors."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:           # "deployments.apps", as error messages name it
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = [
    Resource("", "v1", "Namespace", "namespaces", namespaced=False, status_subresource=True),
    Resource("", "v1", "ConfigMap", "configmaps"),
    Resource("", "v1", "Secret", "secrets"),
    Resource("", "v1", "Service", "services", status_subresource=True),
    Resource("", "v1", "ServiceAccount", "serviceaccounts"),
    Resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", status_subresource=True),
    Resource("", "v1", "Pod", "pods", status_subresource=True),
    Resource("apps", "v1", "Deployment", "deployments", status_subresource=True),
    Resource("apps", "v1", "StatefulSet", "statefulsets", status_subresource=True),
    Resource("batch", "v1", "Job", "jobs", status_subresource=True),
    Resource("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    Resource("coordination.k8s.io", "v1", "Lease", "leases"),
    Resource("networking.k8s.io", "v1", "Ingress", "ingresses", status_subresource=True),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def validate(res: Resource, obj: dict) -> list[tuple[str, str]]:
    """Field errors as (field, message), the way the API server words the common ones."""
    errors: list[tuple[str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    pattern = _DNS_LABEL if res.kind in ("Namespace", "Service") else _DNS_SUBDOMAIN
    if not name:
        errors.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > (63 if pattern is _DNS_LABEL else 253) or not pattern.match(name):
        errors.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                       f'{"label" if pattern is _DNS_LABEL else "subdomain"} must consist of lower case alphanumeric '
                       "characters, '-' or '.', and must start and end with an alphanumeric character"))
    for key, value in (meta.get("labels") or {}).items():
        if not _LABEL_NAME.match(key) or len(key.split("/")[-1]) > 63:
            errors.append(("metadata.labels", f'Invalid value: "{key}": name part must consist of alphanumeric characters'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            errors.append(("metadata.labels", f'Invalid value: "{value}": a valid label must be an empty string or consist of alphanumeric characters, \'-\', \'_\' or \'.\' (at most 63)'))
    spec = obj.get("spec") or {}
    if res.kind in ("Deployment", "StatefulSet"):
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector:
            errors.append(("spec.selector", "Required value"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            errors.append(("spec.template.metadata.labels", f"Invalid value: {labels}: `selector` does not match template `labels`"))
        _validate_pod(((spec.get("template") or {}).get("spec")) or {}, "spec.template.spec", errors)
    if res.kind == "Job":
        _validate_pod(((spec.get("template") or {}).get("spec")) or {}, "spec.template.spec", errors)
    if res.kind == "Pod":
        _validate_pod(spec, "spec", errors)
    if res.kind == "Service":
        for n, port in enumerate(spec.get("ports") or []):
            if not isinstance(port.get("port"), int) or not 1 <= port["port"] <= 65535:
                errors.append((f"spec.ports[{n}].port", f"Invalid value: {port.get('port')}: must be between 1 and 65535, inclusive"))
            node_port = port.get("nodePort")
            if node_port is not None and spec.get("type") not in ("NodePort", "LoadBalancer"):
                errors.append((f"spec.ports[{n}].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'"))
    return errors


def _validate_pod(spec: dict, where: str, errors: list) -> None:
    containers = spec.get("containers") or []
    if not containers:
        errors.append((f"{where}.containers", "Required value"))
    for n, c in enumerate(containers):
        if not c.get("name"):
            errors.append((f"{where}.containers[{n}].name", "Required value"))
        if not c.get("image"):
            errors.append((f"{where}.containers[{n}].image", "Required value"))


def apply_defaults(res: Resource, obj: dict, allocate_ip) -> None:
    """A few of the defaults a real API server fills in (so diffs must ignore what they did not set)."""
    spec = obj.get("spec")
    if res.kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = allocate_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    if res.kind in ("Deployment", "StatefulSet", "Job") and isinstance(spec, dict):
        if res.kind == "Deployment":
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("strategy", {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        if res.kind == "Job":
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
        pod = (spec.get("template") or {}).get("spec")
        if isinstance(pod, dict):
            _default_pod(pod, "Never" if res.kind == "Job" else "Always")
    if res.kind == "Pod" and isinstance(spec, dict):
        _default_pod(spec, "Always")
    if res.kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
    if res.kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
    if res.kind == "Secret":
        obj.setdefault("type", "Opaque")


def _default_pod(spec: dict, restart: str) -> None:
    spec.setdefault("restartPolicy", restart)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for c in spec.get("containers") or []:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


# ---- label selectors ----------------------------------------------------------------------

_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


class SelectorError(ValueError):
    pass


def parse_selector(text: str):
    """A label selector (equality- and set-based) as a predicate over a labels dict."""
    parts, depth, current = [], 0, ""
    for ch in text or "":
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    tests = []
    for part in parts:
        m = _REQ.match(part)
        if not m:
            raise SelectorError(f'unable to parse requirement: "{part.strip()}"')
        neg, key, op, value, setop, values = m.groups()
        if neg and (op or setop):
            raise SelectorError(f'unable to parse requirement: "{part.strip()}"')
        if neg:
            tests.append(lambda l, k=key: k not in l)
        elif op in ("=", "=="):
            tests.append(lambda l, k=key, v=value: l.get(k) == v)
        elif op == "!=":
            tests.append(lambda l, k=key, v=value: l.get(k) != v)
        elif setop:
            choices = {v.strip() for v in values.split(",") if v.strip()}
            if setop == "in":
                tests.append(lambda l, k=key, c=choices: l.get(k) in c)
            else:
                tests.append(lambda l, k=key, c=choices: l.get(k) not in c)
        else:
            tests.append(lambda l, k=key: k in l)
    return lambda labels: all(t(labels or {}) for t in tests)


# Fields a real API server refuses to change after creation (422), and its words for it.
IMMUTABLE = {
    "PersistentVolumeClaim": [("spec", "storageClassName"), ("spec", "accessModes"), ("spec", "volumeName"),
                              ("spec", "volumeMode"), ("spec", "selector"), ("spec", "dataSource")],
    "Job": [("spec", "template"), ("spec", "selector"), ("spec", "completionMode")],
    "Deployment": [("spec", "selector")],
    "StatefulSet": [("spec", "selector"), ("spec", "serviceName"), ("spec", "volumeClaimTemplates"),
                    ("spec", "podManagementPolicy")],
    "Service": [("spec", "clusterIP"), ("spec", "clusterIPs")],
    "RoleBinding": [("roleRef",)],
}


def _at(obj: dict, path: tuple):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def immutable_changes(res: Resource, old: dict, new: dict) -> list[tuple[str, str]]:
    """(field, message) for each immutable field an update changes; a field the update leaves
    unset keeps its old value (the server defaults it back)."""
    errors = []
    for path in IMMUTABLE.get(res.kind, []):
        before, after = _at(old, path), _at(new, path)
        if after is not None and before is not None and after != before:
            field = ".".join(path)
            message = ("spec is immutable after creation except resources.requests and volumeAttributesClassName "
                       "for bound claims" if res.kind == "PersistentVolumeClaim" else "field is immutable")
            errors.append(("spec" if res.kind == "PersistentVolumeClaim" else field, message))
    return errors
