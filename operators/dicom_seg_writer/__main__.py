"""python -m claractl_operators.dicom_seg_writer --dicom DIR --labels DIR --output DIR [--model NAME] [--labels-names a,b,c]"""

from __future__ import annotations

import argparse
import logging
import sys
from io import BytesIO
from pathlib import Path

import numpy as np

from ..common.errors import OperatorError, run
from ..common.files import atomic_write_bytes, nifti_stem, read_nifti, volumes_in
from ..dicom_reader.series import geometry, scan
from .labels import names_from_arg, names_from_model, names_from_sidecar
from .writer import build_seg, check_grid

log = logging.getLogger("dicom-seg-writer")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dicom-seg-writer", description="Label maps → DICOM SEG referencing the source series.")
    p.add_argument("--dicom", required=True, type=Path, help="the source DICOM series (searched recursively)")
    p.add_argument("--labels", required=True, type=Path, help="label maps <SeriesInstanceUID>.nii.gz (uint8)")
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--model", help="model whose config parameter `labels` names the classes")
    p.add_argument("--protocol", choices=["http", "grpc"], help="how to reach the inference service for --model")
    p.add_argument("--labels-names", help="comma-separated class names in label-value order, background first")
    a = p.parse_args(argv)

    series, _ = scan(a.dicom)
    if not series:
        raise OperatorError(f"no DICOM image series under {a.dicom}")
    maps = volumes_in(a.labels)
    if not maps:
        raise OperatorError(f"no label maps (.nii.gz) in {a.labels}")
    names = names_from_arg(a.labels_names) if a.labels_names else []
    if not names and a.model:
        names = names_from_model(a.model, a.protocol)

    jobs = []
    for path in maps:
        uid = nifti_stem(path)
        if uid not in series:
            if len(series) == 1 and len(maps) == 1:
                uid = next(iter(series))
                log.warning("%s: name is not a SeriesInstanceUID; using the only source series %s", path.name, uid)
            else:
                raise OperatorError(f"{path}: no source series with SeriesInstanceUID {uid} under {a.dicom}")
        jobs.append((path, uid))

    a.output.mkdir(parents=True, exist_ok=True)
    for path, uid in jobs:
        data, affine = read_nifti(path)
        labels = np.asarray(data)
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 255:
            raise OperatorError(f"{path}: label map must hold integers 0..255")
        geo = geometry(uid, series[uid])
        check_grid(labels, affine, geo, str(path))
        seg = build_seg(labels.astype(np.uint8), geo, names or names_from_sidecar(path), a.model)
        if seg is None:
            log.warning("%s: no labelled voxels; no SEG written for series %s", path.name, uid)
            continue
        target = a.output / ("seg.dcm" if len(jobs) == 1 else f"seg-{uid}.dcm")
        buf = BytesIO()
        seg.save_as(buf, enforce_file_format=True)
        atomic_write_bytes(target, buf.getvalue())
        log.info("%s: %d segments (%s) → %s", uid, len(seg.SegmentSequence),
                 ", ".join(s.SegmentLabel for s in seg.SegmentSequence), target)
    return 0


if __name__ == "__main__":
    sys.exit(run("dicom-seg-writer", main))
