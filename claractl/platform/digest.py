"""Content digest of a model directory, as the platform records it and plans compare it.

    sha256 over every regular file, in sorted order of its POSIX path relative to the directory:
        path (UTF-8) + b"\\n" + size (decimal ASCII) + b"\\n" + content
    written as "sha256:<hex>". Hidden files (name starting with ".") are skipped.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_digest(directory: str | Path) -> str:
    root = Path(directory)
    h = hashlib.sha256()
    files = sorted(
        (p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    for path in files:
        rel = path.relative_to(root).as_posix()
        h.update(rel.encode("utf-8") + b"\n" + str(path.stat().st_size).encode() + b"\n")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()
