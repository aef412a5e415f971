"""Payload directories: `<payloads-dir>/<id>/input/` (job input) and `operators/…` (outputs).

Files arrive through `write_file_atomically`: streamed into a hidden temp file next to the
target, fsynced, then renamed, so a crash never leaves a half-written file under its real name.
Leftover temp files (a crash mid-upload) are removed by `remove_partial_uploads` at start.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sqlalchemy.orm import Session

from claractl.platform.store.models import Payload

PARTIAL_PREFIX = ".upload-"
PARTIAL_SUFFIX = ".part"


class UnsafePath(ValueError):
    """A payload file path that would leave the payload directory."""


def payload_dir(payloads_dir: Path, payload_id: str) -> Path:
    return Path(payloads_dir) / payload_id


def new_payload(session: Session, payloads_dir: Path) -> Payload:
    """Add a Payload row and create its `input/` directory (the caller commits)."""
    payload = Payload()
    session.add(payload)
    session.flush()
    (payload_dir(payloads_dir, payload.id) / "input").mkdir(parents=True, exist_ok=True)
    return payload


def safe_relative(path: str) -> PurePosixPath:
    """Validate a client-given relative path: no absolute path, no `..`, no empty or hidden temp names."""
    if not path or "\x00" in path or "\\" in path:
        raise UnsafePath(f"invalid file path {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", ".", "") for part in path.split("/")):
        raise UnsafePath(f"file path {path!r} must be relative and may not contain '..' or empty parts")
    if pure.name.startswith(PARTIAL_PREFIX):
        raise UnsafePath(f"file names starting with {PARTIAL_PREFIX!r} are reserved")
    return pure


def resolve_in(root: Path, rel: str) -> Path:
    target = (root / safe_relative(rel)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafePath(f"file path {rel!r} leaves the payload")
    return target


def fsync_dir(path: Path) -> None:
    """Make the names in a directory (new, renamed, removed entries) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _atomic_file(target: Path) -> Iterator[BinaryIO]:
    """Open a temp file beside target; on success fsync it, rename it over target, fsync the
    directory (so the name is durable too); on any error remove it. Readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file_atomically(target: Path, chunks: Iterable[bytes]) -> int:
    """Write chunks to target durably and atomically; returns the size."""
    size = 0
    with _atomic_file(target) as fh:
        for chunk in chunks:
            size += fh.write(chunk)
    return size


def list_files(root: Path) -> list[dict]:
    """Every complete file under root: [{path, size}] sorted by path (temp files hidden)."""
    out = []
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.name.startswith(PARTIAL_PREFIX):
            out.append({"path": p.relative_to(root).as_posix(), "size": p.stat().st_size})
    return out


def remove_partial_uploads(payloads_dir: Path, min_age: float = 0.0) -> int:
    """Delete temp files `write_file_atomically` left under a directory (a crash mid-write;
    never acknowledged). `min_age` (s): only files untouched that long — where other processes
    share the directory, a fresh one may be an upload in progress."""
    removed = 0
    if not Path(payloads_dir).is_dir():
        return 0
    now = time.time()
    for p in Path(payloads_dir).rglob(f"{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}"):
        try:
            if min_age and now - p.stat().st_mtime < min_age:
                continue
        except FileNotFoundError:
            continue
        p.unlink(missing_ok=True)
        removed += 1
    return removed


def delete_payload_dir(payloads_dir: Path, payload_id: str) -> None:
    shutil.rmtree(payload_dir(payloads_dir, payload_id), ignore_errors=True)


async def write_stream_atomically(target: Path, chunks: AsyncIterable[bytes]) -> int:
    """Async twin of write_file_atomically for request bodies (any size, never held in memory)."""
    size = 0
    with _atomic_file(target) as fh:
        async for chunk in chunks:
            size += fh.write(chunk)
    return size
