"""Disk helpers of the DICOM adapter: durable directory trees and the free-space check.

Instances themselves are made durable by the receive spool (spool.py); small files such as a
group's `group.json` by `store.payloads.write_file_atomically`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from claractl.platform.store.payloads import fsync_dir


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
