"""`claractl render`: the project's manifests as files, for pull-based GitOps (Argo CD, Flux).

One multi-document YAML file per service (`platform.yaml`, `dicom-adapter.yaml`, …), objects in
render order, inventory labels included. Secret values are never written: a database URL or API
token that comes from `${env:NAME}` is referenced by Secret name, and `secrets_to_create` says
which Secrets the cluster must hold.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from claractl.project.model import Project, Secret
from claractl.targets.kubernetes.manifests import DesiredObject, desired_objects
from claractl.targets.kubernetes.values import DATABASE_SECRET, POSTGRESQL_SECRET, TOKEN_SECRET, own_postgresql


def manifests_by_service(project: Project) -> dict[str, list[DesiredObject]]:
    grouped: dict[str, list[DesiredObject]] = {}
    for obj in desired_objects(project, reveal_secrets=False):
        grouped.setdefault(obj.service, []).append(obj)
    return grouped


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, explicit_start=True)


def write_manifests(project: Project, output_dir: str | os.PathLike[str]) -> list[Path]:
    """Write <output_dir>/<service>.yaml per service (each file replaced atomically)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for service, objects in manifests_by_service(project).items():
        path = out / f"{service}.yaml"
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(f"# Rendered by claractl from {project.path.name} (project {project.name}); do not edit.\n"
                       + to_yaml([o.manifest for o in objects]))
        os.replace(tmp, path)
        written.append(path)
    return written


def secrets_to_create(project: Project) -> list[str]:
    """`name (key)` of each Secret the rendered manifests reference but do not contain."""
    platform = (project.services or {}).get("platform") or {}
    needed = []
    if isinstance(platform.get("database"), Secret):
        needed.append(f"{DATABASE_SECRET} (key url)")
    if isinstance(platform.get("api-token"), Secret) or not platform.get("api-token"):
        # a token from ${env:…}, or none (claractl apply generates one; GitOps has no apply)
        needed.append(f"{TOKEN_SECRET} (key token)")
    if own_postgresql(project):
        needed.append(f"{POSTGRESQL_SECRET} (key password: letters and digits, it goes into the database URL)")
    return needed
