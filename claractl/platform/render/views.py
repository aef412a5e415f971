"""Read the platform's tables into the JSON the dashboard draws.

The render back end is part of the platform, so it reads the store directly (one query per
view, no N+1) instead of going through the HTTP API: it works the same with or without the
API process in front of it, and needs no token of its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from claractl.platform.operations.ids import clara_id, lookup_id
from claractl.platform.store.models import (
    PRIORITIES,
    AETitle,
    Destination,
    ExportTask,
    Job,
    Model,
    Pipeline,
    Source,
)

PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}

# Keys under which producers record the calling AE title in Job.metadata_ (the DICOM adapter's
# choice is not fixed by the contract; accept the spellings in use, first match wins).
SOURCE_AE_KEYS = ("calling_ae_title", "calling_ae", "source_ae_title", "source_ae", "callingAE")

MAX_PAYLOAD_FILES = 2000
SOURCE_SCAN = 10000


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:            # SQLite hands back naive datetimes; they are stored as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def seconds_between(start: datetime | None, stop: datetime | None) -> float | None:
    if start is None:
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    end = stop or datetime.now(timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    return round((end - start).total_seconds(), 3)


def source_ae(metadata: dict[str, Any] | None) -> str | None:
    metadata = metadata or {}
    for key in SOURCE_AE_KEYS:
        if metadata.get(key):
            return str(metadata[key])
    dicom = metadata.get("dicom")
    if isinstance(dicom, dict):
        return source_ae(dicom)
    return None


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "clara_id": clara_id(job.id),          # the same id as the Clara API spells it
        "name": job.name,
        "pipeline": job.pipeline_name,
        "state": job.state,
        "status": job.status,
        "priority": PRIORITY_NAMES.get(job.priority, str(job.priority)),
        "source_ae": source_ae(job.metadata_),
        "created_at": iso(job.created_at),
        "queued_at": iso(job.queued_at),
        "started_at": iso(job.started_at),
        "stopped_at": iso(job.stopped_at),
        "duration": seconds_between(job.started_at, job.stopped_at),
        "message": job.message,
    }


def list_jobs(
    session: Session,
    *,
    state: str | None = None,
    status: str | None = None,
    pipeline: str | None = None,
    source: str | None = None,
    search: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    query = select(Job).order_by(Job.created_at.desc())
    if state:
        query = query.where(Job.state == state.upper())
    if status:
        query = query.where(Job.status == status.upper())
    if pipeline:
        query = query.where(Job.pipeline_name == pipeline)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Job.name.ilike(pattern, escape="\\"), Job.id.ilike(pattern, escape="\\")))
    # The source AE lives in the JSON metadata (key spelling varies): filter it in Python over
    # the most recent SOURCE_SCAN jobs, so a filter never reads the whole history.
    query = query.limit(SOURCE_SCAN if source else limit)
    rows = [job_summary(j) for j in session.scalars(query)]
    if source:
        rows = [r for r in rows if (r["source_ae"] or "").lower() == source.lower()]
    return rows[:limit]


def pipeline_graph(definition: dict[str, Any]) -> dict[str, Any]:
    """Operators as nodes and `input.from` links as edges (the PDL DAG)."""
    nodes, edges = [], []
    for op in definition.get("operators") or []:
        container = op.get("container") or {}
        nodes.append({"name": op["name"], "image": container.get("image"), "tag": container.get("tag")})
        for inp in op.get("input") or []:
            if inp.get("from"):
                edges.append({"from": inp["from"], "to": op["name"], "name": inp.get("name")})
    return {"nodes": nodes, "edges": edges}


def job_detail(session: Session, job: Job, payload_root: Path, logs_root: Path) -> dict[str, Any]:
    data = job_summary(job)
    data["payload_id"] = job.payload_id
    data["metadata"] = job.metadata_
    data["variables"] = job.variables
    data["graph"] = pipeline_graph(job.definition or {})
    data["operators"] = [
        {
            "name": op.name,
            "index": op.index,
            "state": op.state,
            "status": op.status,
            "exit_code": op.exit_code,
            "message": getattr(op, "message", None),
            "started_at": iso(op.started_at),
            "stopped_at": iso(op.stopped_at),
            "duration": seconds_between(op.started_at, op.stopped_at),
            "has_log": (logs_root / "jobs" / job.id / f"{op.name}.log").is_file(),
        }
        for op in job.operators
    ]
    tasks = session.scalars(
        select(ExportTask).where(ExportTask.job_id == job.id).order_by(ExportTask.created_at)
    )
    data["export_tasks"] = [
        {
            "id": t.id,
            "agent": t.agent,
            "destination": t.destination,
            "state": t.state,
            "attempts": t.attempts,
            "message": t.message,
            "files": [{"path": f, "status": (t.file_status or {}).get(f)} for f in t.files or []],
            "updated_at": iso(t.updated_at),
        }
        for t in tasks
    ]
    data["payload_files"] = payload_files(payload_root / job.payload_id)
    return data


def payload_files(root: Path) -> dict[str, Any]:
    files: list[dict[str, Any]] = []
    truncated = False
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            if len(files) >= MAX_PAYLOAD_FILES:
                truncated = True
                break
            files.append({"path": path.relative_to(root).as_posix(), "size": path.stat().st_size})
    return {"files": files, "truncated": truncated, "exists": root.is_dir()}


def get_job(session: Session, job_id: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.id == lookup_id(job_id)).options(selectinload(Job.operators))
    ).first()


def overview(session: Session) -> dict[str, Any]:
    """Everything configured on the platform: pipelines (with DAGs), AE titles, peers, models."""
    return {
        "pipelines": [
            {
                "name": p.name,
                "owner": p.owner,
                "export": p.export,
                "updated_at": iso(p.updated_at),
                "graph": pipeline_graph(p.definition or {}),
            }
            for p in session.scalars(select(Pipeline).order_by(Pipeline.name))
        ],
        "ae_titles": [
            {
                "ae_title": a.ae_title,
                "pipelines": a.pipelines,
                "group_by": a.group_by,
                "timeout": a.timeout,
                "priority": a.priority,
                "owner": a.owner,
            }
            for a in session.scalars(select(AETitle).order_by(AETitle.ae_title))
        ],
        "sources": [
            {"name": s.name, "ae_title": s.ae_title, "host": s.host, "owner": s.owner}
            for s in session.scalars(select(Source).order_by(Source.name))
        ],
        "destinations": [
            {"name": d.name, "ae_title": d.ae_title, "host": d.host, "port": d.port, "owner": d.owner}
            for d in session.scalars(select(Destination).order_by(Destination.name))
        ],
        "models": [
            {
                "name": m.name,
                "state": m.state,
                "loaded": m.state == "LOADED",
                "digest": m.digest,
                "versions": m.versions,
                "message": m.message,
                "platform": (m.config or {}).get("platform") or (m.config or {}).get("backend"),
                "owner": m.owner,
            }
            for m in session.scalars(select(Model).order_by(Model.name))
        ],
    }
