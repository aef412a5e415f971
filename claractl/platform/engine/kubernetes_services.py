"""PDL services on Kubernetes (engine.executor: kubernetes): each running service is a
Deployment (one replica) and a Service in the operators' namespace, owned by the platform's
Deployment (garbage-collected with it, like operator Jobs), labelled `claractl.dev/service-key`.

- The service's http connections are ports of the Service; operators get `<service>.<namespace>.svc:<port>[path]`.
- Its volume connections are directories on the payload volume (`services/<instance>/<name>`),
  mounted at their PDL path in the service pod and in the operators' Job pods; operators get that path.
- Clara's common service volume (NVIDIA_CLARA_SERVICE_DATA_PATH) is the platform's state dir on
  the same volume, read-only (its `models/` is the model repository).
- Ready when the Deployment has an available replica; a pod that cannot start by itself (image
  not pullable, bad config) fails the start after STUCK_SECONDS, naming the pod's reason. Stop
  deletes both (background).

Run on the real cluster by tests/kubernetes/test_k8s_clara_api.py.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Any

from claractl.kube.apply import apply_object, delete_object
from claractl.kube.client import KINDS, Rest
from claractl.kube.errors import KubeError
from claractl.kube.wait import pod_problems
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.executor import ExecutorError
from claractl.platform.engine.kubernetes_executor import (
    STUCK_REASONS, STUCK_SECONDS, KubernetesExecutor, KubernetesSettings,
)
from claractl.platform.engine.kubernetes_jobs import label_value, resources
from claractl.platform.engine.services import CONTAINER_SERVICE_DATA, SERVICE_DATA_PATH, Connection, ServiceError, expand
from claractl.platform.pdl_services import ServiceDecl

DEPLOYMENT, SERVICE = KINDS["Deployment"], KINDS["Service"]
SERVICE_KEY_LABEL = "claractl.dev/service-key"
SERVICE_LABELS = {"app.kubernetes.io/name": "clara-pipeline-service", "app.kubernetes.io/managed-by": "claractl-platform"}
SERVICE_SELECTOR = ",".join(f"{k}={v}" for k, v in sorted(SERVICE_LABELS.items()))   # every service's objects
POLL = 1.0
log = logging.getLogger("claractl.engine")


def object_name(instance: str) -> str:
    """clara-svc-<name>-<hash>: a DNS label (≤63) for both the Deployment and the Service."""
    base = re.sub(r"[^a-z0-9-]", "-", instance.lower()).strip("-")[:40] or "svc"
    return f"clara-svc-{base}-{hashlib.sha256(instance.encode()).hexdigest()[:6]}"


def remove_leftover_services(rest: Rest, namespace: str) -> list[str]:
    """Engine start (before anything is admitted): the Deployments and Services of PDL services a
    platform that stopped without stopping them (a crash) left in the namespace. This engine has
    started none yet, and only one engine runs per namespace, so every one with our labels goes —
    an idle model server would otherwise hold its CPU/GPU until the project is destroyed.
    Returns "Kind/name" of what was deleted."""
    deleted = []
    for kind in (SERVICE, DEPLOYMENT):
        try:
            items = rest.list(kind, namespace, SERVICE_SELECTOR)
        except KubeError as exc:
            log.warning("recovery: leftover %ss of PDL services not checked: %s", kind.kind, exc)
            continue
        for item in items:
            try:
                if delete_object(rest, item):
                    deleted.append(f"{kind.kind}/{item['metadata']['name']}")
            except KubeError as exc:
                log.warning("recovery: could not delete %s/%s: %s", kind.kind, item["metadata"]["name"], exc)
    if deleted:
        log.info("recovery: deleted the PDL services a previous platform left: %s", ", ".join(deleted))
    return deleted


class KubernetesServiceLauncher:
    def __init__(self, settings: KubernetesSettings, rest: Rest | None = None,
                 stuck_seconds: float = STUCK_SECONDS) -> None:
        self.settings = settings
        self.stuck_seconds = stuck_seconds          # a pod that cannot start by itself fails the start after this
        # The operators' executor: same API client, payload volume paths and image rules.
        self.executor = KubernetesExecutor(settings, rest)

    @classmethod
    def from_config(cls, config: PlatformConfig) -> "KubernetesServiceLauncher":
        return cls(KubernetesSettings.from_env(config))

    def _sub_path(self, path: Path) -> str:
        try:
            return self.executor._sub_path(path)
        except ExecutorError as exc:
            raise ServiceError(str(exc)) from None

    def image(self, decl: ServiceDecl) -> str:
        return self.executor.image({"container": {"image": decl.image, "tag": decl.tag}})

    def manifests(self, decl: ServiceDecl, instance: str, data_dir: Path, service_data: Path) -> list[dict[str, Any]]:
        name = object_name(instance)
        labels = {**SERVICE_LABELS, SERVICE_KEY_LABEL: label_value(decl.key)}
        env = {**dict(decl.variables), SERVICE_DATA_PATH: CONTAINER_SERVICE_DATA}
        env.update({conn: path for conn, path in decl.volumes})
        mounts = [{"name": "data", "mountPath": CONTAINER_SERVICE_DATA, "subPath": self._sub_path(service_data),
                   "readOnly": True}]
        mounts += [{"name": "data", "mountPath": path, "subPath": self._sub_path(data_dir / conn)}
                   for conn, path in decl.volumes]
        container: dict[str, Any] = {
            "name": "service", "image": self.image(decl), "imagePullPolicy": self.settings.pull_policy,
            "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "ports": [{"name": f"http-{i}", "containerPort": port} for i, (_n, port, _p) in enumerate(decl.http)],
            "volumeMounts": mounts,
        }
        if decl.command:
            container["command"] = [expand(a, env) for a in decl.command]
        res = resources(dict(decl.requests))
        if res:
            container["resources"] = res
        if decl.http:
            container["readinessProbe"] = {"tcpSocket": {"port": decl.http[0][1]}, "periodSeconds": 2}
        meta: dict[str, Any] = {"name": name, "namespace": self.settings.namespace, "labels": labels,
                                "annotations": {"claractl.dev/service": decl.name, "claractl.dev/image": decl.image_ref}}
        if self.settings.owner:
            meta["ownerReferences"] = self.executor.owner_references()
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {SERVICE_KEY_LABEL: labels[SERVICE_KEY_LABEL]}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [container], "automountServiceAccountToken": False,
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": self.settings.data_claim}}]}}},
        }
        service = {
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {SERVICE_KEY_LABEL: labels[SERVICE_KEY_LABEL]},
                     "ports": [{"name": f"http-{i}", "port": port, "targetPort": port, "protocol": "TCP"}
                               for i, (_n, port, _p) in enumerate(decl.http)]},
        }
        return [deployment, service] if decl.http else [deployment]

    def start(self, decl: ServiceDecl, instance: str, data_dir: Path, service_data: Path,
              log_path: Path) -> "KubernetesService":
        for conn, _path in decl.volumes:
            (data_dir / conn).mkdir(parents=True, exist_ok=True)
            (data_dir / conn).chmod(0o777)          # the service image runs as its own uid
        try:
            rest = self.executor.rest
            objects = self.manifests(decl, instance, data_dir, service_data)   # reads the owner Deployment
            for obj in objects:
                apply_object(rest, obj, force_conflicts=True)
        except (KubeError, ExecutorError) as exc:
            raise ServiceError(str(exc)) from None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} service {decl.name} started as "
                      f"Deployment {objects[0]['metadata']['name']}\n")
        return KubernetesService(rest, decl, objects, data_dir, self.stuck_seconds)


class KubernetesService:
    def __init__(self, rest: Rest, decl: ServiceDecl, objects: list[dict[str, Any]], data_dir: Path,
                 stuck_seconds: float = STUCK_SECONDS) -> None:
        self.rest, self.decl, self.objects, self.data_dir = rest, decl, objects, data_dir
        self.stuck_seconds = stuck_seconds
        self.name = objects[0]["metadata"]["name"]
        self.namespace = objects[0]["metadata"]["namespace"]

    def _deployment(self) -> dict[str, Any] | None:
        try:
            return self.rest.get(DEPLOYMENT, self.namespace, self.name)
        except KubeError:
            return {}                      # a passing API error: not known to be gone

    def wait_ready(self, timeout: float) -> None:
        start = time.monotonic()
        stuck_since: float | None = None           # since when the pod cannot start by itself
        while True:
            live = self._deployment()
            if live is None:
                raise ServiceError(f"Deployment {self.name} disappeared before it was ready")
            if ((live or {}).get("status") or {}).get("availableReplicas", 0) >= 1:
                return
            problems = pod_problems(self.rest, self.objects[0])
            problem = problems[0] if problems else None
            now = time.monotonic()
            stuck = problem is not None and any(r in problem for r in STUCK_REASONS)
            stuck_since = (stuck_since or now) if stuck else None
            if stuck_since is not None and now - stuck_since >= self.stuck_seconds:
                raise ServiceError(f"Deployment {self.name}: {problem}")
            if now - start > timeout:
                raise ServiceError(f"Deployment {self.name} had no available replica after {timeout:g} s"
                                   + (f" ({problem})" if problem else ""))
            time.sleep(POLL)

    def alive(self) -> bool:
        return self._deployment() is not None

    def stop(self) -> None:
        for obj in reversed(self.objects):
            try:
                delete_object(self.rest, obj)
            except KubeError:
                pass                       # already going, or gone

    def connections(self) -> list[Connection]:
        host = f"{self.name}.{self.namespace}.svc"
        conns = [Connection(name, "http", f"{host}:{port}{path}") for name, port, path in self.decl.http]
        conns += [Connection(name, "volume", str(self.data_dir / name), path) for name, path in self.decl.volumes]
        return conns

    def describe(self) -> dict[str, Any]:
        return {"deployment": self.name, "namespace": self.namespace}
