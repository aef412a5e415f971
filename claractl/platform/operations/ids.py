"""Identity as Clara has it: one UUID per pipeline, job and payload, spelled two ways.

claractl stores ids as dashed UUIDs (`3a4edd81-0b4b-4945-be4d-34c4c57bfb67`); Clara's API and its
client speak them as 32 hex digits (`3a4edd810b4b4945be4d34c4c57bfb67`). Both spellings are
accepted everywhere (HTTP API, CLI, gRPC); the Clara API answers in Clara's spelling, so a client
round-trips exactly what it was given.
"""

from __future__ import annotations

import uuid

from claractl.platform.operations.errors import BadRequest

# Models are keyed by name; their Clara id is derived from it so it never changes.
MODEL_NAMESPACE = uuid.UUID("0b7c5a4e-2d9f-4c3e-8f61-5a9d2b7e1c40")


def clara_id(stored: str) -> str:
    """The Clara spelling of a stored id (32 hex digits); ids that are not UUIDs stay as they are."""
    try:
        return uuid.UUID(stored).hex
    except (ValueError, AttributeError, TypeError):
        return stored


def stored_id(given: str, what: str) -> str:
    """The stored spelling of an id given in either spelling; BadRequest when it is not a UUID."""
    try:
        return str(uuid.UUID(str(given).strip()))
    except (ValueError, AttributeError):
        raise BadRequest(f"invalid {what} id {given!r}: expected a UUID (32 hex digits)", what) from None


def lookup_id(given: str) -> str:
    """The stored spelling when `given` is a UUID; otherwise `given` itself (a lookup that finds nothing)."""
    try:
        return str(uuid.UUID(str(given).strip()))
    except (ValueError, AttributeError):
        return given


def model_id(name: str) -> str:
    return uuid.uuid5(MODEL_NAMESPACE, name.lower()).hex


def checked_id(given: str, what: str) -> str:
    """`given` as the caller spelled it (so messages echo it back), after checking it is a UUID."""
    stored_id(given, what)
    return str(given).strip()
