"""python -m claractl_operators.dicom_reader --input DIR --output DIR"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..common.errors import OperatorError, run
from ..common.files import write_json, write_nifti
from .series import assemble, scan

log = logging.getLogger("dicom-reader")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dicom-reader", description="DICOM image series → NIfTI volumes (one per series).")
    p.add_argument("--input", required=True, type=Path, help="directory searched recursively for DICOM files")
    p.add_argument("--output", required=True, type=Path, help="directory for <SeriesInstanceUID>.nii.gz + .json")
    a = p.parse_args(argv)
    series, skipped = scan(a.input)
    for note in skipped:
        log.info("skipped %s", note)
    if not series:
        raise OperatorError(f"no DICOM image series under {a.input} ({len(skipped)} files skipped)")
    a.output.mkdir(parents=True, exist_ok=True)
    for uid, slices in sorted(series.items()):
        vol = assemble(uid, slices, a.input)
        write_nifti(a.output / f"{uid}.nii.gz", vol.voxels, vol.affine_ras)
        write_json(a.output / f"{uid}.json", vol.metadata)
        log.info("series %s: %s slices → %s %s", uid, len(vol.metadata["files"]), vol.voxels.shape, vol.voxels.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(run("dicom-reader", main))
