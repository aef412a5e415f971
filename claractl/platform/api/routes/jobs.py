"""Jobs: create, start (with `${{ }}` variables), cancel, list, status with operators, logs.
The logic is claractl.platform.operations.jobs (shared with the Clara API)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.schemas import JobIn, JobOut, JobStartIn
from claractl.platform.operations import jobs as ops

router = APIRouter(tags=["jobs"])
IdPath = Path(max_length=36)


@router.post("/jobs", response_model=JobOut, status_code=201)
def create(body: JobIn, c: ApiContext = Depends(ctx)):
    inputs = list(body.input_payloads) + ([body.payload_id] if body.payload_id else [])
    return ops.create_job(c, pipeline=body.pipeline, name=body.name, priority=body.priority, input_payloads=inputs,
                          metadata=body.metadata, timeout=body.timeout)


@router.post("/jobs/{job_id}/start", response_model=JobOut)
def start(body: JobStartIn | None = None, job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return ops.start_job(c, job_id, (body.variables if body else {}) or {})


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return ops.cancel_job(c, job_id)


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    state: str | None = Query(default=None, pattern="^(PENDING|RUNNING|STOPPED)$"),
    status: str | None = Query(default=None, pattern="^(HEALTHY|FAULTED|CANCELED|EVICTED|TERMINATED)$"),
    pipeline: str | None = Query(default=None, max_length=255),
    created_after: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=10000),
    c: ApiContext = Depends(ctx),
):
    return ops.list_jobs(c, states=[state] if state else [], statuses=[status] if status else [],
                         pipelines=[pipeline] if pipeline else [], created_after=created_after, limit=limit)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return ops.get_job(c, job_id)


@router.get("/jobs/{job_id}/logs/{operator}", response_class=PlainTextResponse)
def logs(job_id: str = IdPath, operator: str = Path(max_length=255), tail: int | None = Query(default=None, ge=1),
         c: ApiContext = Depends(ctx)):
    return PlainTextResponse(ops.read_logs(c, job_id, operator, tail)[1])
