"""Content digest of a Triton model directory: "sha256:<hex>" over its sorted relative paths and
file contents. The platform computes the same value for an uploaded model, so plan can compare
without uploading. Uses the inference package's function when present (one algorithm, one place).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _digest(model_dir: str | os.PathLike[str]) -> str:
    root = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        rel = path.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def model_digest(model_dir: str | os.PathLike[str]) -> str:
    try:   # the function the platform uses when a model is uploaded (PUT /models/{name})
        from claractl.platform.store.digest import model_digest as platform_digest
    except ImportError:
        return _digest(model_dir)
    return platform_digest(model_dir)
