"""Durable instance writes: temp file in the same directory, fsync, rename, fsync the directory.

A crash at any point leaves either the old file, the new file, or a `*.part` temp file that
`remove_partials` deletes on restart — never half an instance under its final name.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from pathlib import Path

PARTIAL_SUFFIX = ".part"
_counter = itertools.count()   # unique temp names without os.urandom (slow under load)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, chunks: list[bytes] | tuple[bytes, ...]) -> None:
    """Write `chunks` to `path` atomically and durably (data and directory entry)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_counter)}{PARTIAL_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        os.fdatasync(fd)   # data and size; the directory fsync below makes the name durable
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def make_dirs_durable(path: Path) -> None:
    """Create `path` and parents, fsyncing each new entry's parent so the tree survives a crash."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            pass
        fsync_dir(d.parent)


def remove_partials(directory: Path) -> int:
    """Delete temp files a crash left behind; return how many."""
    count = 0
    for p in directory.rglob(f"*{PARTIAL_SUFFIX}"):
        p.unlink(missing_ok=True)
        count += 1
    return count


def has_room(directory: Path, incoming: int, watermark_percent: float, reserve_mb: int) -> tuple[bool, str]:
    """Whether `incoming` more bytes fit under the watermark and above the reserve."""
    usage = shutil.disk_usage(directory)
    used_after = usage.used + incoming
    free_after = usage.free - incoming
    if watermark_percent and used_after * 100.0 / usage.total > watermark_percent:
        return False, f"disk {used_after * 100.0 / usage.total:.1f}% full, watermark {watermark_percent}%"
    if reserve_mb and free_after < reserve_mb * 1024 * 1024:
        return False, f"{free_after // (1024 * 1024)} MB free, reserve {reserve_mb} MB"
    return True, ""
