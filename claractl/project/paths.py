"""Paths in a project stay inside the project's folder, unless the project names a directory.

In GitOps a project file arrives in a pull request; a `path`, `file` or `state-dir` that leads
out of the project (`../../etc`, an absolute path, a symbolic link pointing elsewhere) would make
claractl read or write files the reviewer never sees. Each path is resolved (symbolic links
followed) and must land inside the project folder or inside one of the directories listed under
the project's top-level `allow-paths` — visible in the file, so in review.
"""

from __future__ import annotations

import os
from pathlib import Path


NAME_MAX, PATH_MAX = 255, 4096          # bytes (Linux); longer names make every file call fail


def unusable(text: str) -> str | None:
    """Why `text` cannot name a file at all (the OS would refuse it), or None."""
    if "\x00" in text:
        return f"{text!r} is not a path: it contains a NUL character"
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) >= PATH_MAX or any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        return f"{text[:40]!r}… is not a path: longer than the system allows ({NAME_MAX} bytes a name, {PATH_MAX} in all)"
    return None


class Confinement:
    """The directories paths of one project may lead into: its folder and its `allow-paths`."""

    def __init__(self, root: Path, allowed: list[str] | None = None) -> None:
        self.root = root.resolve()
        self.roots = [self.root] + [(self.root / entry).resolve() for entry in allowed or []]

    def contains(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(resolved == root or root in resolved.parents for root in self.roots)

    def problem(self, relative: str) -> str | None:
        """Why `relative` (as written in the file) leads outside, or None."""
        problem = unusable(relative)
        if problem:
            return problem
        if self.contains(self.root / relative):
            return None
        target = (self.root / relative).resolve()
        via_link = os.path.normpath(self.root / relative) != str(target)
        how = f" (through a symbolic link, to {target})" if via_link else ""
        return (f"{relative} is outside the project folder{how}; list the directory under `allow-paths` "
                "to allow it")
