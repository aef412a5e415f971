"""Jobs: create, start (with `${{ }}` variables), cancel, list, status with operators, logs."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error
from claractl.platform.api.routes.common import not_found, row_dict, utc
from claractl.platform.api.schemas import JobIn, JobOut, JobStartIn
from claractl.platform.engine import cancel_job
from claractl.platform.engine.placeholders import PlaceholderError, resolve
from claractl.platform.store.jobs import create_job
from claractl.platform.store.models import PRIORITIES, Job, JobState, JobStatus, Payload, Pipeline, utcnow
from claractl.platform.store.payloads import new_payload

router = APIRouter(tags=["jobs"])
PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}
IdPath = Path(max_length=36)
OP_FIELDS = ["name", "state", "status", "exit_code", "message", "created_at", "started_at", "stopped_at"]


def job_out(job: Job) -> dict:
    out = row_dict(job, ["id", "name", "pipeline_id", "payload_id", "state", "status", "started", "cancel_requested",
                         "message", "attempts", "timeout", "variables", "created_at", "queued_at",
                         "started_at", "stopped_at"])
    out.update(pipeline=job.pipeline_name, priority=PRIORITY_NAMES.get(job.priority, str(job.priority)),
               metadata=job.metadata_ or {}, cancel_requested=bool(job.cancel_requested),
               operators=[row_dict(op, OP_FIELDS) for op in job.operators])
    return out


def _job(s: Session, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


@router.post("/jobs", response_model=JobOut, status_code=201)
def create(body: JobIn, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        pipeline = s.scalars(select(Pipeline).where(Pipeline.name_key == body.pipeline.lower())).first()
        if pipeline is None:
            raise not_found("pipeline", body.pipeline)
        if body.payload_id:
            payload = s.get(Payload, body.payload_id)
            if payload is None:
                raise not_found("payload", body.payload_id)
            if payload.deleted:
                raise api_error(409, f"payload {body.payload_id!r} was deleted by retention")
        else:
            payload = new_payload(s, c.config.payloads_dir)
        job = create_job(s, pipeline, payload, name=body.name, priority=body.priority, metadata=body.metadata,
                         timeout=body.timeout or c.config.engine.job_timeout)
        return job_out(job)


@router.post("/jobs/{job_id}/start", response_model=JobOut)
def start(body: JobStartIn | None = None, job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    variables = (body.variables if body else {}) or {}
    with c.store.session() as s:
        job = _job(s, job_id)
        if job.started or job.state != JobState.PENDING:
            raise api_error(409, f"job {job_id} was already started (state {job.state})")
        try:
            resolve(job.definition, variables)
        except PlaceholderError as exc:
            raise api_error(422, f"cannot start job {job_id}: {exc}")
        job.variables = variables
        job.started = True
        job.queued_at = utcnow()
        out = job_out(job)
    c.wake_engine()
    return out


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        job = _job(s, job_id)
        if job.state == JobState.STOPPED and job.status != JobStatus.CANCELED:
            raise api_error(409, f"job {job_id} already stopped ({job.status})")
    job = cancel_job(c.store, job_id)
    c.wake_engine()
    return job_out(job)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    state: str | None = Query(default=None, pattern="^(PENDING|RUNNING|STOPPED)$"),
    status: str | None = Query(default=None, pattern="^(HEALTHY|FAULTED|CANCELED|EVICTED|TERMINATED)$"),
    pipeline: str | None = Query(default=None, max_length=255),
    created_after: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=10000),
    c: ApiContext = Depends(ctx),
):
    q = select(Job)
    if state:
        q = q.where(Job.state == state)
    if status:
        q = q.where(Job.status == status)
    if pipeline:
        q = q.where(Job.pipeline_name == pipeline)
    if created_after:
        q = q.where(Job.created_at > utc(created_after))
    q = q.order_by(Job.created_at.desc()).limit(limit)
    with c.store.session() as s:
        return [job_out(j) for j in s.scalars(q)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        return job_out(_job(s, job_id))


@router.get("/jobs/{job_id}/logs/{operator}", response_class=PlainTextResponse)
def logs(job_id: str = IdPath, operator: str = Path(max_length=255), tail: int | None = Query(default=None, ge=1),
         c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        job = _job(s, job_id)
        names = {op.name.lower(): op.name for op in job.operators}
    if operator.lower() not in names:
        raise api_error(404, f"job {job_id} has no operator {operator!r}; it has: {', '.join(names.values())}")
    path = c.config.logs_dir / "jobs" / job_id / f"{names[operator.lower()]}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    if tail:
        text = "\n".join(text.splitlines()[-tail:]) + ("\n" if text else "")
    return PlainTextResponse(text)
