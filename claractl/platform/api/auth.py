"""Bearer token for writes, unless the API listens on loopback only.

The token comes from `CLARA_API_TOKEN` or `config.api.token`, or `<state-dir>/api-token` (written
0600 by the server when it binds beyond loopback without one). It is compared in constant time
and never logged (uvicorn's access log shows request lines, never headers).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware

# read_token lives with the settings so clients read it without loading FastAPI; imported from here too.
from claractl.platform.config import TOKEN_FILE, PlatformConfig, read_token  # noqa: F401

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_token(config: PlatformConfig) -> str | None:
    """The token the server requires; created in the state dir when needed and missing."""
    token = read_token(config)
    if token or is_loopback(config.api.host):
        return token
    token = secrets.token_urlsafe(32)
    path: Path = config.root / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def token_accepted(authorization: str | None, clara_token: str | None, expected: str | None) -> bool:
    """`Authorization: Bearer <token>`, or `X-Clara-Token: <token>` (through the Kubernetes API
    service proxy, Authorization carries the cluster credential and is stripped). Constant time.
    The Clara gRPC API takes the same two as call metadata."""
    scheme, _, given = (authorization or "").partition(" ")
    if clara_token is not None:
        scheme, given = "bearer", clara_token
    return scheme.lower() == "bearer" and bool(expected) and hmac.compare_digest(given.strip(), expected)


class BearerTokenMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, token: str | None, required: bool) -> None:
        super().__init__(app)
        self.token = token
        self.required = required

    async def dispatch(self, request: Request, call_next):
        if self.required and request.method not in READ_METHODS:
            if not token_accepted(request.headers.get("authorization"), request.headers.get("x-clara-token"),
                                  self.token):
                return JSONResponse({"detail": "a valid bearer token is required for this request"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)
