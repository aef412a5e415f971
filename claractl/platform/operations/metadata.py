"""Clara's metadata maps on pipelines, jobs, payloads and models.

Rules as Clara documents them: keys compare case-insensitively; a key at most 128 bytes, a value
at most 256 bytes, one object's metadata at most 4 MB; adding a key that exists (or the same key
twice in one request) changes nothing and is an error; removing returns what is left.
Values claractl itself records (a DICOM job's origin: lists, numbers) are shown as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from claractl.platform.operations.errors import Conflict, Invalid

MAX_KEY = 128
MAX_VALUE = 256
MAX_TOTAL = 4 * 1024 * 1024


def as_strings(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}


def _size(metadata: Mapping[str, Any]) -> int:
    return sum(len(str(k).encode()) + len(json.dumps(v).encode()) for k, v in metadata.items())


def check_new(metadata: Mapping[str, str], what: str = "") -> None:
    seen: set[str] = set()
    for key, value in metadata.items():
        if not key:
            raise Invalid("metadata keys may not be empty", what)
        if len(key.encode()) > MAX_KEY:
            raise Invalid(f"metadata key {key[:40]!r}… is longer than {MAX_KEY} bytes", what)
        if len(str(value).encode()) > MAX_VALUE:
            raise Invalid(f"metadata value of {key!r} is longer than {MAX_VALUE} bytes", what)
        if key.lower() in seen:
            raise Invalid(f"metadata key {key!r} is given twice (keys are case-insensitive)", what)
        seen.add(key.lower())


def added(existing: Mapping[str, Any] | None, new: Mapping[str, str], what: str = "") -> dict[str, Any]:
    """`existing` plus `new`; Conflict when a key already exists."""
    check_new(new, what)
    current = dict(existing or {})
    have = {k.lower(): k for k in current}
    for key, value in new.items():
        if key.lower() in have:
            raise Conflict(f"metadata key {key!r} already exists (as {have[key.lower()]!r}); remove it first", what)
        current[key] = value
    if _size(current) > MAX_TOTAL:
        raise Invalid("metadata would be larger than 4 MB", what)
    return current


def removed(existing: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    """`existing` without `keys` (case-insensitive); unknown keys are ignored."""
    drop = {k.lower() for k in keys}
    return {k: v for k, v in (existing or {}).items() if k.lower() not in drop}


def change(store, find: Callable[[Any], Any], what: str, add: Mapping[str, str] | None = None,
           remove: Iterable[str] | None = None) -> dict[str, Any]:
    """Add or remove metadata on the row `find(session)` returns, in one transaction; the result."""
    with store.session() as s:
        row = find(s)
        row.metadata_ = added(row.metadata_, add, what) if add is not None else removed(row.metadata_, remove or ())
        return dict(row.metadata_)
