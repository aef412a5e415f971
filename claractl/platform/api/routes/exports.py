"""Export tasks (Clara's Results Service): agents claim due tasks, then report success or failure."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import select

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error
from claractl.platform.api.routes.common import not_found, row_dict
from claractl.platform.api.schemas import ExportResultIn, ExportTaskIn, ExportTaskOut
from claractl.platform.store import exports
from claractl.platform.store.models import ExportTask, Job

router = APIRouter(tags=["export-tasks"])
IdPath = Path(max_length=36)
FIELDS = ["id", "job_id", "agent", "destination", "files", "file_status", "state", "attempts", "max_attempts",
          "next_attempt_at", "message", "created_at", "updated_at"]


@router.post("/export-tasks", response_model=ExportTaskOut, status_code=201)
def create_task(body: ExportTaskIn, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        if s.get(Job, body.job_id) is None:
            raise not_found("job", body.job_id)
        task = exports.create_export_task(s, body.job_id, body.agent, body.files, body.destination, body.max_attempts)
        return row_dict(task, FIELDS)


@router.get("/export-tasks", response_model=list[ExportTaskOut])
def list_tasks(
    agent: str | None = Query(default=None, max_length=64),
    state: str | None = Query(default=None, pattern="^(PENDING|IN_PROGRESS|SUCCEEDED|FAILED)$"),
    job_id: str | None = Query(default=None, max_length=36),
    limit: int = Query(default=100, ge=1, le=10000),
    c: ApiContext = Depends(ctx),
):
    q = select(ExportTask)
    if agent:
        q = q.where(ExportTask.agent == agent)
    if state:
        q = q.where(ExportTask.state == state)
    if job_id:
        q = q.where(ExportTask.job_id == job_id)
    with c.store.session() as s:
        return [row_dict(t, FIELDS) for t in s.scalars(q.order_by(ExportTask.created_at).limit(limit))]


@router.post("/export-tasks/claim", response_model=list[ExportTaskOut])
def claim(agent: str = Query(min_length=1, max_length=64), limit: int = Query(default=10, ge=1, le=1000),
          c: ApiContext = Depends(ctx)):
    """Mark up to `limit` due PENDING tasks of `agent` IN_PROGRESS and return them."""
    with c.store.session() as s:
        return [row_dict(t, FIELDS) for t in exports.claim_export_tasks(s, agent, limit)]


@router.get("/export-tasks/{task_id}", response_model=ExportTaskOut)
def get_task(task_id: str = IdPath, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        task = s.get(ExportTask, task_id)
        if task is None:
            raise not_found("export task", task_id)
        return row_dict(task, FIELDS)


def _report(c: ApiContext, task_id: str, body: ExportResultIn | None, fn) -> dict:
    body = body or ExportResultIn()
    with c.store.session() as s:
        try:
            task = fn(s, task_id, body.message, body.file_status)
        except exports.ExportTaskFinished as exc:
            raise api_error(409, str(exc))
        if task is None:
            raise not_found("export task", task_id)
        return row_dict(task, FIELDS)


@router.post("/export-tasks/{task_id}/succeeded", response_model=ExportTaskOut)
def succeeded(body: ExportResultIn | None = None, task_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return _report(c, task_id, body, exports.mark_succeeded)


@router.post("/export-tasks/{task_id}/failed", response_model=ExportTaskOut)
def failed(body: ExportResultIn | None = None, task_id: str = IdPath, c: ApiContext = Depends(ctx)):
    """Count a failed attempt: PENDING again after a back-off, or FAILED at max_attempts."""
    return _report(c, task_id, body, exports.mark_failed)
