"""What an operator Job is called and how it is labelled: shared by the executor that makes the
Jobs and the recovery that finds a crashed platform's leftovers (kubernetes_leftovers.py)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import logging

from claractl.kube.client import KINDS, Rest
from claractl.kube.errors import KubeError

JOB, POD = KINDS["Job"], KINDS["Pod"]
JOB_ID_LABEL = "claractl.dev/job-id"
OPERATOR_LABEL = "claractl.dev/operator"
# On every operator Job (with the two above); recovery finds a crashed platform's Jobs by them.
OPERATOR_LABELS = {"app.kubernetes.io/name": "clara-operator", "app.kubernetes.io/managed-by": "claractl-platform"}


def job_name(job_id: str, operator: str) -> str:
    """clara-<job id prefix>-<operator>, a DNS label (≤63): operator names may not be."""
    op = re.sub(r"[^a-z0-9-]", "-", operator.lower()).strip("-") or "op"
    digest = hashlib.sha256(f"{job_id}/{operator}".encode()).hexdigest()[:6]
    return f"clara-{job_id[:8]}-{op[:40]}-{digest}".lower()


def label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return value.strip("-_.") or "x"


def resources(requests: dict[str, Any] | None) -> dict[str, Any]:
    """PDL requests → requests and limits (equal: the engine admitted the job on these numbers)."""
    amounts: dict[str, str] = {}
    req = requests or {}
    if req.get("cpu"):
        amounts["cpu"] = f"{float(req['cpu']):g}"
    if req.get("memory"):
        amounts["memory"] = f"{int(req['memory'])}Mi"
    if req.get("gpu"):
        amounts["nvidia.com/gpu"] = str(int(req["gpu"]))
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def owner_references(rest: Rest, namespace: str, deployment: str) -> list[dict[str, Any]]:
    """[ownerReference] to the platform's Deployment for what the platform creates; [] (logged)
    when it cannot be read — the objects then outlive a destroy until their TTL."""
    if not deployment:
        return []
    try:
        live = rest.get(KINDS["Deployment"], namespace, deployment)
    except KubeError as exc:
        logging.getLogger("claractl.engine").warning("cannot read Deployment %s/%s to own operator Jobs: %s",
                                                     namespace, deployment, exc)
        return []
    if live is None:
        return []
    return [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
             "uid": live["metadata"]["uid"], "blockOwnerDeletion": True}]
