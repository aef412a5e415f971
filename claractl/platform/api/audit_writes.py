"""Every write to the API (POST, PUT, PATCH, DELETE under /api/v1) is an audit event: method and
path, who (with a valid token, without one on loopback, or refused), from which address, and the
status answered. Bodies are not recorded (they may hold secrets or patient data)."""

from __future__ import annotations

from fastapi import Request
from starlette.middleware.base import BaseHTTPMiddleware

from claractl.platform.api.auth import READ_METHODS, token_accepted
from claractl.platform.audit import trail
from claractl.platform.store.models import AuditOutcome


class AuditWritesMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, store, token: str | None, prefix: str) -> None:
        super().__init__(app)
        self.store = store
        self.token = token
        self.prefix = prefix

    async def dispatch(self, request: Request, call_next):
        if request.method in READ_METHODS or not request.url.path.startswith(self.prefix):
            return await call_next(request)
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            self._record(request, status)

    def _record(self, request: Request, status: int) -> None:
        if token_accepted(request.headers.get("authorization"), request.headers.get("x-clara-token"), self.token):
            actor = "api (bearer token)"
        elif status == 401:
            actor = "api (refused: no valid token)"
        else:
            actor = "api (no token)"
        outcome = (AuditOutcome.SUCCESS if status < 400 else
                   AuditOutcome.MINOR_FAILURE if status < 500 else AuditOutcome.SERIOUS_FAILURE)
        client = request.client
        trail.emit(self.store, "api", request.method, outcome=outcome, actor=actor,
                   source=f"{client.host}:{client.port}" if client else "", target=request.url.path,
                   detail={"status": status})
