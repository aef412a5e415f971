"""Desired objects for a project: render each service chart, then stamp the inventory labels.

The inventory labels are how claractl finds (and later prunes) what it owns, and nothing else:
`claractl.dev/project=<project>` on every object, `claractl.dev/service=<service>` for the
address. An object is addressed `service.<service>/<Kind>/<name>` (DESIGN §4).
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass
from typing import Any

from claractl.kube.labels import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL, SERVICE_LABEL
from claractl.project.model import Project
from claractl.targets.kubernetes import helm
from claractl.targets.kubernetes.values import RELEASE, TOKEN_SECRET, charts_dir, namespace_of, values_for



@dataclass
class DesiredObject:
    service: str
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    @property
    def address(self) -> str:
        return object_address(self.service, self.manifest)


def object_address(service: str, obj: dict[str, Any]) -> str:
    return f"service.{service}/{obj['kind']}/{obj['metadata']['name']}"


def label_inventory(obj: dict[str, Any], project_name: str, service: str, namespace: str) -> dict[str, Any]:
    """A copy of obj with the inventory labels, its namespace, and Secret stringData as data."""
    obj = copy.deepcopy(obj)
    meta = obj.setdefault("metadata", {})
    meta.setdefault("namespace", namespace)
    labels = meta.setdefault("labels", {})
    labels[PROJECT_LABEL] = project_name
    labels[SERVICE_LABEL] = service
    labels[MANAGED_BY_LABEL] = MANAGER
    # The API server folds stringData into data; send data so the live object compares equal.
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    return obj


def render_service(project: Project, service: str, values: dict[str, Any]) -> list[DesiredObject]:
    objects = helm.render_chart(charts_dir() / service, RELEASE, namespace_of(project), values)
    ns = namespace_of(project)
    return [DesiredObject(service, label_inventory(o, project.name, service, ns)) for o in objects]


def desired_objects(project: Project, reveal_secrets: bool = False) -> list[DesiredObject]:
    """Every object the project's enabled services render, in service order (platform first)."""
    result: list[DesiredObject] = []
    for service, values in values_for(project, reveal_secrets=reveal_secrets).items():
        result.extend(render_service(project, service, values))
    return result


def generated_secret(project: Project, service: str, name: str, key: str, value: str) -> DesiredObject:
    """A Secret claractl generates on the first apply and keeps (a new value would lock the
    platform out): the API token when the project gives none (the platform, claractl and operator
    Jobs read it), the project's PostgreSQL password (server and platform read it). Never rendered
    for GitOps (see gitops.py)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": name, "labels": {"app.kubernetes.io/name": service,
                                                    "app.kubernetes.io/instance": RELEASE,
                                                    "app.kubernetes.io/part-of": "clara"}},
              "stringData": {key: value}}
    return DesiredObject(service, label_inventory(secret, project.name, service, namespace_of(project)))


def generated_token_secret(project: Project, token: str) -> DesiredObject:
    return generated_secret(project, "platform", TOKEN_SECRET, "token", token)


def namespace_object(project: Project) -> DesiredObject:
    """The project's namespace, when claractl makes it (it did not exist): labelled as the
    project's, so `destroy` removes it; a namespace made by someone else is never managed."""
    ns = namespace_of(project)
    return DesiredObject("platform", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ns, "labels": {PROJECT_LABEL: project.name, SERVICE_LABEL: "platform", MANAGED_BY_LABEL: MANAGER}}})
