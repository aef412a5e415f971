"""python -m claractl_operators.register_volume_images_for_rendering --input DIR [--input DIR ...]"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..common.errors import OperatorError, run
from ..common.platform_api import JobContext

log = logging.getLogger("register-volume-images-for-rendering")
AGENT = "renderserver"
RENDERABLE = (".nii.gz", ".nii", ".json")  # volumes, label maps and their sidecars


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="register-volume-images-for-rendering",
                                description="Publish volumes and label maps of a job to the viewer.")
    p.add_argument("--input", required=True, action="append", type=Path,
                   help="directory of NIfTI volumes or label maps (repeat for volume and labels)")
    a = p.parse_args(argv)
    ctx = JobContext.from_env()
    files = []
    for directory in a.input:
        found = [f for f in ctx.relative_files(directory) if f.endswith(RENDERABLE)]
        if not any(f.endswith((".nii.gz", ".nii")) for f in found):
            raise OperatorError(f"no NIfTI volumes in {directory}")
        files += found
    task = ctx.create_export_task(AGENT, None, sorted(set(files)))
    log.info("export task %s: agent %s, %d files", task.get("id", "?"), AGENT, len(files))
    return 0


if __name__ == "__main__":
    sys.exit(run("register-volume-images-for-rendering", main))
