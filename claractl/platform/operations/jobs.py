"""Jobs: create (with its own payload, taking input payloads), start with variables, cancel, list,
status with operators, logs, metadata."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claractl.platform.engine import cancel_job as engine_cancel
from claractl.platform.engine.placeholders import PlaceholderError, resolve
from claractl.platform.engine.runner import CANCELED_BY_REQUEST
from claractl.platform.operations import metadata as md
from claractl.platform.operations import payloads as payload_ops
from claractl.platform.operations import pipelines as pipeline_ops
from claractl.platform.operations.common import row_dict, utc
from claractl.platform.operations.context import Context
from claractl.platform.operations.errors import Conflict, Invalid, NotFound, not_found
from claractl.platform.operations.ids import clara_id, lookup_id
from claractl.platform.store.jobs import create_job as store_create_job
from claractl.platform.store.models import PRIORITIES, Job, JobState, JobStatus, PayloadType, utcnow
from claractl.platform.store.payloads import new_payload, payload_dir

PRIORITY_NAMES = {v: k for k, v in PRIORITIES.items()}
OP_FIELDS = ["name", "state", "status", "exit_code", "message", "created_at", "started_at", "stopped_at"]
JOB_FIELDS = ["id", "name", "pipeline_id", "payload_id", "state", "status", "started", "cancel_requested", "message",
              "attempts", "timeout", "variables", "created_at", "queued_at", "started_at", "stopped_at"]


def as_dict(job: Job) -> dict[str, Any]:
    out = row_dict(job, JOB_FIELDS)
    out.update(pipeline=job.pipeline_name, priority=PRIORITY_NAMES.get(job.priority, str(job.priority)),
               metadata=job.metadata_ or {}, cancel_requested=bool(job.cancel_requested),
               clara_id=clara_id(job.id), input_payloads=list(job.input_payloads or []),
               operators=[row_dict(op, OP_FIELDS) for op in job.operators])
    return out


def find(s: Session, job_id: str) -> Job:
    job = s.get(Job, lookup_id(job_id))
    if job is None:
        raise not_found("job", job_id)
    return job


def create_job(c: Context, pipeline: str | None = None, pipeline_id: str | None = None, name: str | None = None,
               priority: str = "normal", input_payloads: Iterable[str] = (), metadata: dict[str, Any] | None = None,
               timeout: float | None = None) -> dict[str, Any]:
    """A PENDING job with a payload of its own; `input_payloads` are linked into its `input/`
    (read-only), so any number of jobs can take the same payload and keep their own outputs."""
    with c.store.session() as s:
        p = pipeline_ops.find(s, pipeline, pipeline_id)
        payload = new_payload(s, c.config.payloads_dir)
        payload.type = PayloadType.PIPELINE
        sources = payload_ops.link_inputs(c, s, list(input_payloads), payload_dir(c.config.payloads_dir, payload.id))
        job = store_create_job(s, p, payload, name=name, priority=priority, metadata=metadata,
                               timeout=timeout or c.config.engine.job_timeout)
        job.input_payloads = sources
        s.flush()
        return as_dict(job)


def start_job(c: Context, job_id: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    variables = variables or {}
    with c.store.session() as s:
        job = find(s, job_id)
        if job.started or job.state != JobState.PENDING:
            raise Conflict(f"job {job_id} was already started (state {job.state})", "job")
        try:
            resolve(job.definition, variables)
        except PlaceholderError as exc:
            raise Invalid(f"cannot start job {job_id}: {exc}", "job") from None
        job.variables = variables
        job.started = True
        job.queued_at = utcnow()
        out = as_dict(job)
    c.wake_engine()
    return out


def cancel_job(c: Context, job_id: str, reason: str | None = None) -> dict[str, Any]:
    with c.store.session() as s:
        job = find(s, job_id)
        if job.state == JobState.STOPPED and job.status != JobStatus.CANCELED:
            raise Conflict(f"job {job_id} already stopped ({job.status})", "job")
        stored = job.id
    job = engine_cancel(c.store, stored)
    if reason:      # shown as the job's message (the engine keeps it when it stops a running job)
        with c.store.session() as s:
            job = s.get(Job, stored)
            if job.cancel_requested or job.status == JobStatus.CANCELED:
                job.message = f"{CANCELED_BY_REQUEST}: {reason}"
            _ = job.operators
    c.wake_engine()
    return as_dict(job)


def list_jobs(c: Context, states: Iterable[str] = (), statuses: Iterable[str] = (), pipelines: Iterable[str] = (),
              pipeline_ids: Iterable[str] = (), created_after: datetime | None = None,
              completed_before: datetime | None = None, limit: int | None = 100) -> list[dict[str, Any]]:
    q = select(Job)
    if states := list(states):
        q = q.where(Job.state.in_(states))
    if statuses := list(statuses):
        q = q.where(Job.status.in_(statuses))
    if pipelines := list(pipelines):
        q = q.where(Job.pipeline_name.in_(pipelines))
    if pipeline_ids := [lookup_id(p) for p in pipeline_ids]:
        q = q.where(Job.pipeline_id.in_(pipeline_ids))
    if created_after:
        q = q.where(Job.created_at > utc(created_after))
    if completed_before:
        q = q.where(Job.stopped_at.is_not(None), Job.stopped_at < utc(completed_before))
    q = q.order_by(Job.created_at.desc())
    if limit:
        q = q.limit(limit)
    with c.store.session() as s:
        return [as_dict(j) for j in s.scalars(q)]


def get_job(c: Context, job_id: str) -> dict[str, Any]:
    with c.store.session() as s:
        job = find(s, job_id)
        out = as_dict(job)
        out["definition"] = job.definition
        return out


def read_logs(c: Context, job_id: str, operator: str, tail: int | None = None) -> tuple[str, str]:
    """(operator name as declared, log text) of one operator of a job."""
    with c.store.session() as s:
        job = find(s, job_id)
        names = {op.name.lower(): op.name for op in job.operators}
        stored = job.id
    if operator.lower() not in names:
        raise NotFound(f"job {job_id} has no operator {operator!r}; it has: {', '.join(names.values())}", "operator")
    name = names[operator.lower()]
    path = c.config.logs_dir / "jobs" / stored / f"{name}.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    if tail:
        text = "\n".join(text.splitlines()[-tail:]) + ("\n" if text else "")
    return name, text


def add_metadata(c: Context, job_id: str, new: dict[str, str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, job_id), "job", add=new)


def remove_metadata(c: Context, job_id: str, keys: list[str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, job_id), "job", remove=keys)
