"""Safe extraction of an uploaded tar archive, the same on every Python >= 3.11.

`TarFile.extractall(filter="data")` only exists from Python 3.11.4 (Debian 12 ships 3.11.2), and
even that filter strips a leading `/` and accepts links inside the destination. An uploaded model
needs neither, so every member is checked first and the archive is refused as a whole (nothing
written) unless all members are regular files or directories with relative paths that stay inside
`dest`. Members are then written as new files and directories of the platform's user: the
archive's owner, mode bits and times are not applied (as the zip upload path does).
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath


class UnsafeArchive(ValueError):
    """A member the archive may not contain; the message names it."""


def _refusal(member: tarfile.TarInfo, dest: Path) -> str | None:
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute():
        return f"archive member {name!r} has an absolute path"
    if ".." in path.parts:
        return f"archive member {name!r} leaves the model directory ('..' in its path)"
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        target = member.linkname
        inside = (dest / name).parent.joinpath(target) if member.issym() else dest / target
        where = "inside" if inside.resolve().is_relative_to(dest.resolve()) else "outside"
        return (f"archive member {name!r} is a {kind} to {target!r} ({where} the model directory); "
                "only regular files and directories are accepted")
    if member.ischr() or member.isblk():
        return f"archive member {name!r} is a device; only regular files and directories are accepted"
    if not (member.isreg() or member.isdir()):
        return f"archive member {name!r} is not a regular file or directory"
    if not (dest / name).resolve().is_relative_to(dest.resolve()):
        return f"archive member {name!r} leaves the model directory"
    return None


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract `archive` (tar, any compression tarfile reads) into the existing directory `dest`.
    Raises UnsafeArchive (nothing extracted) for absolute paths, `..`, links, devices, FIFOs;
    tarfile.TarError / EOFError / OSError for unreadable archives."""
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            reason = _refusal(member, dest)
            if reason:
                raise UnsafeArchive(reason)
        for member in members:
            target = dest / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
