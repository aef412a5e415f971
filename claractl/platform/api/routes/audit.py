"""The audit trail (GET /audit): who did what, from where, with which outcome — newest first.

It names patients (by Patient ID): off loopback it is read with the API token only, like a write.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from claractl.platform.api.auth import is_loopback, token_accepted
from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.audit.query import KINDS, list_events

router = APIRouter(tags=["audit"])


def require_token(request: Request, c: ApiContext = Depends(ctx)) -> None:
    if is_loopback(c.config.api.host):
        return
    if not token_accepted(request.headers.get("authorization"), request.headers.get("x-clara-token"),
                          request.app.state.token):
        raise HTTPException(401, "the audit trail is read with the API token (Authorization: Bearer …)",
                            headers={"WWW-Authenticate": "Bearer"})


@router.get("/audit", dependencies=[Depends(require_token)])
def audit(
    kind: str | None = Query(default=None, pattern="^(" + "|".join(KINDS) + ")$"),
    actor: str | None = Query(default=None, max_length=255, description="calling AE, api (…), engine"),
    study_uid: str | None = Query(default=None, max_length=64),
    job_id: str | None = Query(default=None, max_length=36),
    since: datetime | None = Query(default=None, description="ISO 8601 time; events at or after it"),
    until: datetime | None = Query(default=None, description="ISO 8601 time; events before it"),
    failures: bool = Query(default=False, description="only events whose outcome is not success"),
    before_id: int | None = Query(default=None, ge=1, description="page back: events older than this id"),
    after_id: int | None = Query(default=None, ge=0, description="follow: events newer than this id, oldest first"),
    limit: int = Query(default=100, ge=1, le=1000),
    c: ApiContext = Depends(ctx),
) -> list[dict]:
    with c.store.session() as s:
        return list_events(s, kind=kind, actor=actor, study_uid=study_uid, job_id=job_id, since=since, until=until,
                           failures=failures, before_id=before_id, after_id=after_id, limit=limit)
