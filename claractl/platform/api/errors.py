"""Errors are JSON `{"detail": "<message>"}` with a 4xx status — never a 500 for bad input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claractl.platform.operations import OperationError

log = logging.getLogger("claractl.api")


def api_error(status: int, message: str, **extra) -> HTTPException:
    return HTTPException(status_code=status, detail={"detail": message, **extra})


def _body(detail) -> dict:
    if isinstance(detail, dict) and "detail" in detail:
        return detail
    return {"detail": str(detail)}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return JSONResponse(_body(exc.detail), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationError)
    async def operation_error(_request: Request, exc: OperationError):
        return JSONResponse({"detail": exc.message}, status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError):
        return JSONResponse({"detail": "conflict with an existing record"}, status_code=409)

    @app.exception_handler(OperationalError)
    async def store_unavailable(_request: Request, exc: OperationalError):
        log.error("store error: %s", exc.orig)
        return JSONResponse({"detail": "the platform store is unavailable; retry"}, status_code=503)
