"""Reading the audit trail: newest first, filtered, paged by id (for the API, CLI and dashboard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claractl.platform.store.models import AuditEvent, AuditOutcome

KINDS = ("association", "study", "job", "export", "api")
OUTCOME_NAMES = {AuditOutcome.SUCCESS: "success", AuditOutcome.MINOR_FAILURE: "minor failure",
                 AuditOutcome.SERIOUS_FAILURE: "serious failure", AuditOutcome.MAJOR_FAILURE: "major failure"}


def as_dict(e: AuditEvent) -> dict[str, Any]:
    at = e.at.isoformat().replace("+00:00", "Z") if e.at.tzinfo else e.at.isoformat() + "Z"
    return {"id": e.id, "at": at, "kind": e.kind, "action": e.action, "outcome": e.outcome,
            "outcome_text": OUTCOME_NAMES.get(e.outcome, str(e.outcome)), "actor": e.actor, "source": e.source,
            "target": e.target, "study_uid": e.study_uid, "patient_id": e.patient_id, "job_id": e.job_id,
            "detail": e.detail or {}}


def list_events(session: Session, *, kind: str | None = None, actor: str | None = None,
                study_uid: str | None = None, job_id: str | None = None, since: datetime | None = None,
                until: datetime | None = None, failures: bool = False, before_id: int | None = None,
                after_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Events matching every given filter, newest first; `before_id` pages back, `after_id`
    (oldest first then) follows the trail forward."""
    q = select(AuditEvent)
    for column, value in ((AuditEvent.kind, kind), (AuditEvent.actor, actor), (AuditEvent.study_uid, study_uid),
                          (AuditEvent.job_id, job_id)):
        if value:
            q = q.where(column == value)
    if since is not None:
        q = q.where(AuditEvent.at >= since)
    if until is not None:
        q = q.where(AuditEvent.at < until)
    if failures:
        q = q.where(AuditEvent.outcome != AuditOutcome.SUCCESS)
    if before_id is not None:
        q = q.where(AuditEvent.id < before_id)
    if after_id is not None:
        q = q.where(AuditEvent.id > after_id).order_by(AuditEvent.id.asc())
    else:
        q = q.order_by(AuditEvent.id.desc())
    return [as_dict(e) for e in session.scalars(q.limit(limit))]
