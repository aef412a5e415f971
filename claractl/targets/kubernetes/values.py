"""Helm values for each service chart, derived from the project's `services` section.

`values_for(project)` returns {service name: chart values} for the services the project enables
(the platform always; Triton only when enabled and no external `url` is given). Keys follow
DESIGN §2 and schemas/project.schema.json (kebab-case); the kubernetes-only ones (images, pull
policies, resources, service types) are in docs/kubernetes.md.

Defaults fit a 2-CPU node: the platform requests 250m CPU, the embedded inference service 250m,
so one operator Job of 1 CPU runs beside them. Triton with GPUs gets NVIDIA's image and 1 CPU.

`services.platform.high-availability: true` renders the platform as three Deployments (API +
dashboard, leader-elected engine, DICOM receivers; 100m CPU each by default) on PostgreSQL —
`database: postgresql` deploys the postgresql chart (`services.postgresql`), its password in a
Secret claractl generates (target.py), like the API token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from claractl.project.model import Project, Secret
from claractl.resources import CHARTS_DIR

import claractl

RELEASE = "clara"                      # release name: objects are named clara-<service>
# What scripts/build-images.sh builds (a name without registry is docker.io's, as in any pod spec).
PLATFORM_IMAGE = f"claractl/platform:{claractl.__version__}"
PLATFORM_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
# Each pod of a high-availability platform (six by default) does a third of the one pod's work.
HA_PLATFORM_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}
POSTGRESQL_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
EMBEDDED_TRITON_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "4Gi"}}
TRITON_RESOURCES = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "16Gi"}}
POSTGRESQL_IMAGE = f"claractl/postgresql:{claractl.__version__}"
SERVICES = ("postgresql", "platform", "dicom-adapter", "triton", "render")   # apply order
DATABASE_SECRET = f"{RELEASE}-platform-database"
TOKEN_SECRET = f"{RELEASE}-platform-api-token"
POSTGRESQL_SECRET = f"{RELEASE}-postgresql"       # key "password"; claractl generates it (target.py)
POSTGRESQL_HOST = f"{RELEASE}-postgresql"
MODELS_CLAIM = f"{RELEASE}-triton-models"


def charts_dir() -> Path:
    """The charts/ folder: $CLARA_CHARTS_DIR when set, else the checkout's (claractl.resources)."""
    env = os.environ.get("CLARA_CHARTS_DIR")
    return Path(env) if env else CHARTS_DIR


def namespace_of(project: Project) -> str:
    return (project.target.kubernetes or {}).get("namespace") or "clara"


def enabled_services(project: Project) -> list[str]:
    services = project.services or {}
    enabled = []
    for name in SERVICES:
        settings = services.get(name) or {}
        if name == "triton" and settings.get("url"):
            continue                          # an existing Triton: nothing to deploy
        if name == "postgresql":
            if own_postgresql(project):
                enabled.append(name)
            continue
        if name == "platform" or settings.get("enabled", True):
            enabled.append(name)
    return enabled


def own_postgresql(project: Project) -> bool:
    """`database: postgresql`: the project deploys its PostgreSQL (the postgresql chart)."""
    return ((project.services or {}).get("platform") or {}).get("database") == "postgresql"


def high_availability(project: Project) -> bool:
    return bool(((project.services or {}).get("platform") or {}).get("high-availability"))


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
        "api": {"port": int(platform.get("api-port", 8765)), "grpcPort": int(platform.get("grpc-port", 50051)),
                "workers": int(platform.get("workers", 2))},
        "database": _database_values(platform.get("database", "sqlite"), reveal_secrets),
        "engine": {"jobTimeout": platform.get("job-timeout", 600),
                   "payloadRetention": platform.get("payload-retention", 86400),
                   "serviceIdle": platform.get("service-idle", 60)},
        "dicom": {
            "enabled": "dicom-adapter" in enabled,
            "port": int(dicom.get("port", 11112)),
            "aeTitle": dicom.get("ae-title", "CLARA"),
            "maxAssociations": int(dicom.get("max-associations", 25)),
            "rejectUnknownSources": bool(dicom.get("reject-unknown-sources", True)),
            "watermarkPercent": (dicom.get("storage") or {}).get("watermark-percent", 85),
            "reserveMb": int((dicom.get("storage") or {}).get("reserve-mb", 0)),
            "spoolSegmentMb": int((dicom.get("storage") or {}).get("spool-segment-mb", 64)),
        },
        "render": {"enabled": "render" in enabled, "port": int(render.get("port", 8080))},
        "persistence": {"data": {"storageClass": storage_class}},
    }
    token = platform.get("api-token")
    # Without a token in the project claractl generates one into this Secret at apply (target.py).
    p["api"].update({"token": _secret_text(token)} if token and reveal_secrets else {"tokenSecret": TOKEN_SECRET})
    if platform.get("storage-size"):
        p["persistence"]["data"]["size"] = str(platform["storage-size"])
    platform_image = _image(platform.get("image") or PLATFORM_IMAGE, platform.get("image-pull-policy"))
    p["image"] = platform_image
    p["operatorImagePullPolicy"] = platform.get("operator-image-pull-policy", "IfNotPresent")
    ha = high_availability(project)
    p["resources"] = _resources(platform.get("resources"), HA_PLATFORM_RESOURCES if ha else PLATFORM_RESOURCES)
    if ha:
        p["highAvailability"] = {
            "enabled": True, "apiReplicas": int(platform.get("replicas", 2)),
            "engineReplicas": int(platform.get("engine-replicas", 2)),
            "dicomReplicas": int(dicom.get("replicas", 2)), "drainSeconds": int(dicom.get("drain-seconds", 600)),
        }
        # Every role's pods mount the state volume: on several nodes that takes ReadWriteMany.
        p["persistence"]["data"]["accessModes"] = ["ReadWriteMany"]
    http_port, grpc_port = int(triton.get("http-port", 8000)), int(triton.get("grpc-port", 8001))
    if "triton" in enabled:
        p["inference"] = {"url": f"http://{RELEASE}-triton:{http_port}", "grpcUrl": f"{RELEASE}-triton:{grpc_port}"}
        p["persistence"]["models"] = {"existingClaim": MODELS_CLAIM}
    elif triton.get("url") and triton.get("enabled", True):
        url = str(triton["url"])
        p["inference"] = {"url": url if "://" in url else f"http://{url}"}
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
        if ha:                      # the receivers; one sender's associations stay on one of them
            out["dicom-adapter"]["platformComponent"] = "dicom"
            svc["sessionAffinity"] = True

    if "triton" in enabled:
        gpus = int(triton.get("gpus", 0))
        embedded = bool(triton.get("embedded", gpus == 0))     # CPU only: the embedded service
        t: dict[str, Any] = {
            **common,
            "embedded": embedded,
            "gpus": gpus,
            "ports": {"http": http_port, "grpc": grpc_port},
            # With high availability the platform's pods mount it on every node they run on.
            "modelRepository": {"storageClass": storage_class,
                                **({"accessModes": ["ReadWriteMany"]} if ha else {})},
            "embeddedImage": platform_image,
            "resources": _resources(triton.get("resources"),
                                    EMBEDDED_TRITON_RESOURCES if embedded else TRITON_RESOURCES),
        }
        if triton.get("image"):
            t["image"] = _image(triton["image"], triton.get("image-pull-policy"))
        out["triton"] = t

    if "render" in enabled:
        port = int(render.get("port", 8080))
        out["render"] = {**common, "service": {"type": render.get("service-type", "ClusterIP"),
                                               "port": port, "targetPort": port}}
        if ha:
            out["render"]["platformComponent"] = "api"

    if "postgresql" in enabled:
        pg = services.get("postgresql") or {}
        out = {"postgresql": {
            **common, "image": _image(pg.get("image") or POSTGRESQL_IMAGE, pg.get("image-pull-policy")),
            "auth": {"existingSecret": POSTGRESQL_SECRET},
            "persistence": {"size": str(pg.get("storage-size", "10Gi")), "storageClass": storage_class},
            "resources": _resources(pg.get("resources"), POSTGRESQL_RESOURCES),
        }, **out}                     # first: the platform's pods wait for it (rules.py)
    return out


def _secret_text(value: Any) -> str:
    return value.value if isinstance(value, Secret) else str(value)


def _database_values(database: Any, reveal_secrets: bool) -> dict[str, Any]:
    if database == "postgresql":          # the project's own (postgresql chart)
        return {"type": "postgresql", "host": POSTGRESQL_HOST, "passwordSecret": POSTGRESQL_SECRET}
    if isinstance(database, Secret) or (isinstance(database, str) and "${env:" in database):
        if reveal_secrets:
            return {"type": "external", "url": _secret_text(database)}
        return {"type": "external", "existingSecret": DATABASE_SECRET}
    if not database or database == "sqlite":
        return {"type": "sqlite"}
    # A plain URL in the file holds no secret (a password would come from ${env:…}),
    # but it still travels in a Secret so the Deployment looks the same either way.
    return {"type": "external", "url": str(database)}


def _image(ref: str, pull_policy: str | None = None) -> dict[str, str]:
    """Split "repo/name:tag" (a registry port is not a tag) into Helm image values."""
    name, sep, tag = ref.rpartition(":")
    image = {"repository": ref, "tag": ""} if not sep or "/" in tag else {"repository": name, "tag": tag}
    return {**image, "pullPolicy": pull_policy or "IfNotPresent"}


def _resources(given: dict[str, Any] | None, defaults: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """The project's requests/limits over the defaults, as Kubernetes quantity strings."""
    out = {kind: dict(amounts) for kind, amounts in defaults.items()}
    for kind, amounts in (given or {}).items():
        out.setdefault(kind, {}).update({k: str(v) for k, v in amounts.items()})
    return out
