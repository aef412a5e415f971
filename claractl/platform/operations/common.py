"""Small helpers the operation modules share."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def row_dict(row: Any, fields: list[str]) -> dict[str, Any]:
    out = {}
    for f in fields:
        v = getattr(row, f)
        out[f] = utc(v) if isinstance(v, datetime) else v
    return out
