"""Small helpers shared by the route modules."""

from __future__ import annotations

from claractl.platform.api.errors import api_error
from claractl.platform.operations.common import row_dict, utc

__all__ = ["row_dict", "utc", "not_found"]


def not_found(kind: str, key: str):
    return api_error(404, f"{kind} {key!r} not found")
