"""What `high-availability` and `database: postgresql` need (docs/kubernetes.md, "High
availability"): the kubernetes target, and PostgreSQL rather than SQLite. Replica counts without
high availability, or PostgreSQL settings nobody uses, would be silently ignored: they are errors."""

from __future__ import annotations

from typing import Any

from claractl.project.model import Diagnostic
from claractl.project.yamlsource import Document

HA_ONLY = (("services", "platform", "replicas"), ("services", "platform", "engine-replicas"),
           ("services", "dicom-adapter", "replicas"), ("services", "dicom-adapter", "drain-seconds"))


def _get(data: Any, path: tuple) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def check_availability(doc: Document, skip: set[str]) -> list[Diagnostic]:
    data = doc.data
    kubernetes = _get(data, ("target", "type")) == "kubernetes"
    ha_path, db_path = ("services", "platform", "high-availability"), ("services", "platform", "database")
    ha, database = _get(data, ha_path) is True, _get(data, db_path)
    out = []
    if ha and not kubernetes:
        out.append(doc.diagnostic(ha_path, "high availability runs on the kubernetes target only (target.type: kubernetes)"))
    if database == "postgresql" and not kubernetes:
        out.append(doc.diagnostic(db_path, "database: postgresql deploys PostgreSQL on the kubernetes target; "
                                           "here give a postgresql://USER@HOST/DB URL"))
    sqlite = database is None or (isinstance(database, str) and database.startswith("sqlite"))
    if ha and kubernetes and sqlite and "services.platform.database" not in skip:
        out.append(doc.diagnostic(db_path if database is not None else ha_path,
                                  "high availability needs PostgreSQL (several pods share the store; SQLite is "
                                  "one file on one node): set services.platform.database to postgresql "
                                  "(deployed by the project) or a postgresql:// URL"))
    if not ha:
        for path in HA_ONLY:
            if _get(data, path) is not None:
                out.append(doc.diagnostic(path, "only used with services.platform.high-availability: true"))
    if _get(data, ("services", "postgresql")) is not None and database != "postgresql":
        out.append(doc.diagnostic(("services", "postgresql"),
                                  "only used with services.platform.database: postgresql"))
    return out


__all__ = ["check_availability"]
