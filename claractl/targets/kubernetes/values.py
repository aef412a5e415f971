"""Helm values for each service chart, derived from the project's `services` section.

`values_for(project)` returns {service name: chart values} for the services the project enables
(the platform always). Keys follow DESIGN §2 (kebab-case in the file); a few optional,
kubernetes-only keys are read when present and documented in docs/kubernetes.md:
`services.dicom-adapter.service-type` / `node-port` / `service-port`, `services.triton.embedded`,
`services.render.service-type`, `services.platform.image`, `services.platform.storage-size`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from claractl.project.model import Project, Secret

RELEASE = "clara"                      # release name: objects are named clara-<service>
SERVICES = ("platform", "dicom-adapter", "triton", "render")   # apply order
DATABASE_SECRET = f"{RELEASE}-platform-database"
MODELS_CLAIM = f"{RELEASE}-triton-models"


def charts_dir() -> Path:
    """The charts/ folder: $CLARA_CHARTS_DIR (the container image sets it), else the checkout's."""
    env = os.environ.get("CLARA_CHARTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "charts"


def namespace_of(project: Project) -> str:
    return (project.target.kubernetes or {}).get("namespace") or "clara"


def enabled_services(project: Project) -> list[str]:
    services = project.services or {}
    return [name for name in SERVICES
            if name == "platform" or (services.get(name) or {}).get("enabled", True)]


def values_for(project: Project, reveal_secrets: bool = False) -> dict[str, dict[str, Any]]:
    """Chart values per enabled service.

    With `reveal_secrets=False` (render for GitOps, plan) a database URL that is a secret is left
    out: the platform reads it from Secret `clara-platform-database` (key `url`), which you
    create. With `reveal_secrets=True` (apply) the chart creates that Secret from the URL.
    """
    services = project.services or {}
    enabled = enabled_services(project)
    kube = project.target.kubernetes or {}
    storage_class = kube.get("storage-class") or ""
    common = {"project": project.name, "managedBy": "claractl"}

    platform = services.get("platform") or {}
    dicom = services.get("dicom-adapter") or {}
    triton = services.get("triton") or {}
    render = services.get("render") or {}

    out: dict[str, dict[str, Any]] = {}
    p: dict[str, Any] = {
        **common,
        "api": {"port": int(platform.get("api-port", 8765)), "workers": int(platform.get("workers", 2))},
        "database": _database_values(platform.get("database", "sqlite"), reveal_secrets),
        "dicom": {
            "enabled": "dicom-adapter" in enabled,
            "port": int(dicom.get("port", 11112)),
            "aeTitle": dicom.get("ae-title", "CLARA"),
            "maxAssociations": int(dicom.get("max-associations", 25)),
            "rejectUnknownSources": bool(dicom.get("reject-unknown-sources", True)),
            "watermarkPercent": (dicom.get("storage") or {}).get("watermark-percent", 85),
        },
        "render": {"enabled": "render" in enabled, "port": int(render.get("port", 8080))},
        "persistence": {"data": {"storageClass": storage_class}},
    }
    if platform.get("storage-size"):
        p["persistence"]["data"]["size"] = str(platform["storage-size"])
    if platform.get("image"):
        p["image"] = _image(platform["image"])
    if "triton" in enabled:
        p["inference"] = {"url": f"http://{RELEASE}-triton:8000", "grpcUrl": f"{RELEASE}-triton:8001"}
        p["persistence"]["models"] = {"existingClaim": MODELS_CLAIM}
    out["platform"] = p

    if "dicom-adapter" in enabled:
        svc: dict[str, Any] = {
            "type": dicom.get("service-type", "ClusterIP"),
            "port": int(dicom.get("service-port", 104)),
            "targetPort": int(dicom.get("port", 11112)),
        }
        if dicom.get("node-port") is not None:
            svc["nodePort"] = int(dicom["node-port"])
        out["dicom-adapter"] = {**common, "service": svc}

    if "triton" in enabled:
        t: dict[str, Any] = {
            **common,
            "embedded": bool(triton.get("embedded", False)),
            "gpus": int(triton.get("gpus", 1)),
            "modelRepository": {"storageClass": storage_class},
        }
        if triton.get("image"):
            t["image"] = _image(triton["image"])
        if platform.get("image"):
            t["embeddedImage"] = _image(platform["image"])
        out["triton"] = t

    if "render" in enabled:
        port = int(render.get("port", 8080))
        out["render"] = {**common, "service": {"type": render.get("service-type", "ClusterIP"),
                                               "port": port, "targetPort": port}}
    return out


def _database_values(database: Any, reveal_secrets: bool) -> dict[str, Any]:
    if isinstance(database, Secret):
        if reveal_secrets:
            return {"type": "external", "url": database.value}
        return {"type": "external", "existingSecret": DATABASE_SECRET}
    if not database or database == "sqlite":
        return {"type": "sqlite"}
    # A plain URL in the file holds no secret (a password would come from ${env:…}),
    # but it still travels in a Secret so the Deployment looks the same either way.
    return {"type": "external", "url": str(database)}


def _image(ref: str) -> dict[str, str]:
    """Split "repo/name:tag" (a registry port is not a tag) into Helm image values."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return {"repository": ref, "tag": ""}
    return {"repository": name, "tag": tag}
