"""What the engine does at start after a crash, and the payload retention sweep."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import psutil
from sqlalchemy import select

from claractl.platform.audit import trail
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.executor import kill_tree
from claractl.platform.engine.runner import reset_payload_outputs, retention_delay
from claractl.platform.store import Store
from claractl.platform.store.models import (
    ExportState, ExportTask, Job, JobState, JobStatus, Payload, utcnow,
)
from claractl.platform.store.payloads import delete_payload_dir, remove_partial_uploads

log = logging.getLogger("claractl.engine")
MAX_JOB_ATTEMPTS = 3       # a job that was running during this many crashes is EVICTED


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _kill_leftover(pid: int | None, job_id: str) -> None:
    """An operator of a crashed platform may still run: kill it if it is really that job's."""
    if not pid:
        return
    try:
        env = psutil.Process(pid).environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return
    if env.get("NVIDIA_CLARA_JOB_ID") == job_id:
        kill_tree(pid, grace=1.0)


# Where other processes share the state dir (API replicas), a younger partial file may be an upload in progress.
SHARED_PARTIAL_AGE = 3600.0


def recover(store: Store, config: PlatformConfig, adopted: frozenset[str] = frozenset()) -> dict[str, int]:
    """Jobs left RUNNING are re-queued from their payload (or EVICTED) — except `adopted` ones,
    whose running operators the engine re-attaches to (see Engine.start); partial uploads removed."""
    min_age = SHARED_PARTIAL_AGE if config.cluster.shared_state else 0.0
    counts = {"requeued": 0, "evicted": 0, "adopted": len(adopted),
              "partial_uploads": remove_partial_uploads(config.payloads_dir, min_age)}
    with store.session() as s:
        for job in s.scalars(select(Job).where(Job.state == JobState.RUNNING)):
            if job.id in adopted:
                continue
            for run in job.operators:
                _kill_leftover(run.pid, job.id)
            payload = config.payloads_dir / job.payload_id
            if not (payload / "input").is_dir():
                reason = "its payload input is gone"
            elif job.attempts >= MAX_JOB_ATTEMPTS:
                reason = f"it was running during {job.attempts} platform restarts"
            else:
                reason = None
            if reason:
                job.state, job.status = JobState.STOPPED, JobStatus.EVICTED
                job.stopped_at = utcnow()
                job.message = f"evicted after a platform restart: {reason}"
                trail.record_job(s, job, "stopped", status=JobStatus.EVICTED)
                for run in job.operators:
                    if run.state != JobState.STOPPED:
                        run.state, run.status, run.stopped_at = JobState.STOPPED, JobStatus.EVICTED, utcnow()
                counts["evicted"] += 1
                continue
            reset_payload_outputs(payload)
            job.state = JobState.PENDING
            job.started = True
            job.started_at = None
            job.queued_at = job.queued_at or utcnow()
            job.message = f"re-queued after a platform restart (attempt {job.attempts + 1})"
            for run in job.operators:
                run.state, run.status, run.exit_code, run.pid = JobState.PENDING, JobStatus.HEALTHY, None, None
                run.started_at = run.stopped_at = None
                run.message = None
            counts["requeued"] += 1
    if counts["requeued"] or counts["evicted"] or counts["adopted"]:
        log.warning("recovery: %(requeued)d job(s) re-queued, %(evicted)d evicted, %(adopted)d adopted", counts)
    return counts


def sweep_payloads(store: Store, config: PlatformConfig) -> int:
    """Delete payload dirs once every job using them stopped and all their export tasks finished,
    plus the retention delay. Returns how many were deleted."""
    now = utcnow()
    delay = retention_delay(config)
    deleted = 0
    with store.session() as s:
        payloads = list(s.scalars(select(Payload).where(Payload.deleted.is_(False))))
        for payload in payloads:
            jobs = list(s.scalars(select(Job).where(Job.payload_id == payload.id)))
            if not jobs or any(j.state != JobState.STOPPED for j in jobs):
                continue
            tasks = list(s.scalars(select(ExportTask).where(ExportTask.job_id.in_([j.id for j in jobs]))))
            if any(t.state not in (ExportState.SUCCEEDED, ExportState.FAILED) for t in tasks):
                continue
            finished = max([_aware(j.stopped_at) or now for j in jobs] + [_aware(t.updated_at) or now for t in tasks])
            payload.delete_after = finished + delay
            if now >= payload.delete_after:
                delete_payload_dir(config.payloads_dir, payload.id)
                payload.deleted = True
                deleted += 1
    return deleted
