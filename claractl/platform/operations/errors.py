"""Errors of operations. Each door turns them into its own answer: the HTTP API into a status
code with `{"detail": message}`, the Clara API into a response header code and message."""

from __future__ import annotations


class OperationError(Exception):
    http_status = 400
    kind = "invalid"

    def __init__(self, message: str, what: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.what = what            # "pipeline", "job", "payload", "model", … (Clara error codes)


class BadRequest(OperationError):
    """Malformed input (an unsafe path, an id that is not an id)."""
    http_status, kind = 400, "bad_request"


class Invalid(OperationError):
    """Well-formed input the platform refuses (a bad pipeline definition, an unknown variable)."""
    http_status, kind = 422, "invalid"


class NotFound(OperationError):
    http_status, kind = 404, "not_found"


class Conflict(OperationError):
    """The request does not fit the current state (job already started, name taken, …)."""
    http_status, kind = 409, "conflict"


class Gone(OperationError):
    """The thing existed and was removed (a payload deleted by retention)."""
    http_status, kind = 410, "gone"


def not_found(what: str, key: str) -> NotFound:
    return NotFound(f"{what} {key!r} not found", what)
