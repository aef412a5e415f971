"""Apply locks: one `claractl apply` at a time per project + target (DESIGN §4)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.exc import IntegrityError

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error
from claractl.platform.api.routes.common import not_found, utc
from claractl.platform.api.schemas import LockIn, LockOut
from claractl.platform.store.models import ApplyLock, utcnow

router = APIRouter(tags=["locks"])
ScopePath = Path(min_length=1, max_length=512)


def lock_out(lock: ApplyLock) -> dict:
    created = utc(lock.created_at)
    return {"scope": lock.scope, "lock_id": lock.lock_id, "holder": lock.holder, "created_at": created,
            "age_seconds": round((utcnow() - created).total_seconds(), 1)}


def _conflict(lock: ApplyLock):
    info = lock_out(lock)
    return api_error(409, f"{lock.scope} is locked by {lock.holder} for {info['age_seconds']:.0f} s "
                          f"(lock id {lock.lock_id})", holder=lock.holder, lock_id=lock.lock_id,
                     age_seconds=info["age_seconds"])


@router.get("/locks/{scope:path}", response_model=LockOut)
def get_lock(scope: str = ScopePath, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        lock = s.get(ApplyLock, scope)
        if lock is None:
            raise not_found("lock", scope)
        return lock_out(lock)


@router.post("/locks/{scope:path}", response_model=LockOut, status_code=201,
             responses={409: {"description": "held by someone else: detail names holder and age"}})
def acquire(body: LockIn, scope: str = ScopePath, c: ApiContext = Depends(ctx)):
    try:
        with c.store.session() as s:
            lock = ApplyLock(scope=scope, holder=body.holder)
            s.add(lock)
            s.flush()
            return lock_out(lock)
    except IntegrityError:
        with c.store.session() as s:
            lock = s.get(ApplyLock, scope)
            if lock is None:      # released in between: let the caller retry
                raise api_error(409, f"{scope} was locked and released concurrently; retry")
            raise _conflict(lock)


@router.delete("/locks/{scope:path}", status_code=204)
def release(scope: str = ScopePath, lock_id: str | None = Query(default=None, max_length=36),
            force: bool = False, c: ApiContext = Depends(ctx)):
    """Release with the lock id that acquired it, or `force=true` (force-unlock)."""
    with c.store.session() as s:
        lock = s.get(ApplyLock, scope)
        if lock is None:
            raise not_found("lock", scope)
        if not force and lock.lock_id != lock_id:
            raise api_error(409, f"lock id {lock_id!r} does not hold {scope}; it is held by {lock.holder} "
                                 f"(lock id {lock.lock_id}); use force to release it")
        s.delete(lock)
    return Response(status_code=204)
