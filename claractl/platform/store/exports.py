"""Clara's Results Service over the store: export tasks per agent with retries and back-off.

States: PENDING → IN_PROGRESS (claimed by an agent) → SUCCEEDED | FAILED. A failure schedules a
retry (`next_attempt_at`, exponential back-off) until `max_attempts`, then the task is FAILED.
A task IN_PROGRESS longer than `CLAIM_LEASE` (its agent died) may be claimed again.
The API and in-process agents (e.g. the DICOM SCU export agent) both use these functions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from claractl.platform.audit import trail
from claractl.platform.store import changes
from claractl.platform.store.models import ExportState, ExportTask, utcnow

CLAIM_LEASE = timedelta(minutes=10)
BACKOFF_BASE = 5.0      # seconds; doubled per attempt
BACKOFF_MAX = 300.0


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


def _aware(dt: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes even for timezone=True columns; they are UTC.
    if dt is not None and dt.tzinfo is None:
        from datetime import timezone
        return dt.replace(tzinfo=timezone.utc)
    return dt


def create_export_task(
    session: Session, job_id: str, agent: str, files: list[str], destination: str | None = None,
    max_attempts: int = 5,
) -> ExportTask:
    """A new task — or the job's existing task for the same agent, destination and files: a job
    re-run after a crash registers its results again (register-results), and they must still be
    delivered once."""
    for existing in session.scalars(select(ExportTask).where(ExportTask.job_id == job_id)):
        if (existing.agent.lower() == agent.lower() and existing.destination == destination
                and sorted(existing.files or []) == sorted(files)):
            return existing
    task = ExportTask(job_id=job_id, agent=agent, destination=destination, files=list(files),
                      file_status={}, max_attempts=max_attempts)
    session.add(task)
    session.flush()
    changes.mark(session, "exports")
    trail.record(session, "export", "registered", actor=agent, target=destination or "", job_id=job_id,
                 detail={"task": task.id, "files": len(task.files)})
    return task


def claim_export_tasks(session: Session, agent: str, limit: int = 10, now: datetime | None = None) -> list[ExportTask]:
    """Mark up to `limit` due tasks of `agent` IN_PROGRESS and return them (the caller commits)."""
    now = now or utcnow()
    query = (
        select(ExportTask)
        .where(ExportTask.agent == agent)
        .where(
            or_(
                (ExportTask.state == ExportState.PENDING)
                & or_(ExportTask.next_attempt_at.is_(None), ExportTask.next_attempt_at <= now),
                (ExportTask.state == ExportState.IN_PROGRESS) & (ExportTask.updated_at <= now - CLAIM_LEASE),
            )
        )
        .order_by(ExportTask.created_at)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    tasks = list(session.scalars(query))
    for task in tasks:
        task.state = ExportState.IN_PROGRESS
        task.updated_at = now
    session.flush()
    return tasks


class ExportTaskFinished(ValueError):
    """The task already reached SUCCEEDED or FAILED."""


def _open_task(session: Session, task_id: str) -> ExportTask | None:
    task = session.get(ExportTask, task_id, with_for_update=True)
    if task is not None and task.state in (ExportState.SUCCEEDED, ExportState.FAILED):
        raise ExportTaskFinished(f"export task {task_id} is already {task.state}")
    return task


def mark_succeeded(session: Session, task_id: str, message: str | None = None,
                   file_status: dict[str, Any] | None = None) -> ExportTask | None:
    task = _open_task(session, task_id)
    if task is None:
        return None
    task.state = ExportState.SUCCEEDED
    task.attempts += 1
    task.message = message
    if file_status:
        task.file_status = {**(task.file_status or {}), **file_status}
    task.next_attempt_at = None
    task.updated_at = utcnow()
    session.flush()
    return task


def mark_failed(session: Session, task_id: str, message: str | None = None,
                file_status: dict[str, Any] | None = None, now: datetime | None = None) -> ExportTask | None:
    """Count a failed attempt: retry later with back-off, or FAILED after max_attempts."""
    now = now or utcnow()
    task = _open_task(session, task_id)
    if task is None:
        return None
    task.attempts += 1
    task.message = message
    if file_status:
        task.file_status = {**(task.file_status or {}), **file_status}
    if task.attempts >= task.max_attempts:
        task.state = ExportState.FAILED
        task.next_attempt_at = None
    else:
        task.state = ExportState.PENDING
        task.next_attempt_at = now + backoff(task.attempts)
    task.updated_at = now
    session.flush()
    return task
