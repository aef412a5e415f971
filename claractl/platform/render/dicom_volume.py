"""Convert a job's DICOM input (one or more image series) to NIfTI volumes for the viewer.

Only used when the job has no NIfTI of its own (no dicom-reader output). Slices are ordered by
their position along the slice normal, Rescale Slope/Intercept applied (CT → Hounsfield units),
and the affine built from Image Orientation/Position (DICOM LPS → NIfTI RAS).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

SKIP_MODALITIES = {"SEG", "SR", "RTSTRUCT", "PR", "KO"}


def modality(path: Path) -> str | None:
    """The file's Modality, or None when it is not DICOM."""
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
    except (InvalidDicomError, OSError, ValueError):
        return None


def convert_series(files: Iterable[Path], out_dir: Path) -> list[str]:
    """Write `<SeriesInstanceUID>.nii.gz` per image series into out_dir; return the file names,
    largest series first. Files that are not DICOM images (or are SEG, SR, …) are skipped."""
    groups: dict[str, list[pydicom.Dataset]] = defaultdict(list)
    for path in sorted(files):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError):
            continue
        if ds.get("Modality") in SKIP_MODALITIES or "ImagePositionPatient" not in ds:
            continue
        ds.filename = str(path)
        groups[str(ds.get("SeriesInstanceUID", "unknown"))].append(ds)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for uid, headers in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        name = f"{_safe(uid)}.nii.gz"
        _write_atomic(series_to_nifti(headers), out_dir / name)
        names.append(name)
    return names


def series_to_nifti(headers: list[pydicom.Dataset]) -> nib.Nifti1Image:
    first = headers[0]
    orientation = np.array(first.ImageOrientationPatient, dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    headers = sorted(headers, key=lambda h: float(np.dot(normal, np.array(h.ImagePositionPatient, dtype=float))))
    slices = []
    for h in headers:
        ds = pydicom.dcmread(h.filename)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if slope == 1 and intercept.is_integer():    # the usual CT case: stay in integers (fast)
            pixels = ds.pixel_array.astype(np.int32) + int(intercept)
        else:
            pixels = ds.pixel_array.astype(np.float32) * slope + intercept
        slices.append(pixels.T)                      # (rows, cols) → (i = column, j = row)
    data = np.stack(slices, axis=-1)
    if data.dtype == np.int32 and data.min() >= -32768 and data.max() <= 32767:
        data = data.astype(np.int16)

    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    positions = [np.array(h.ImagePositionPatient, dtype=float) for h in headers]
    if len(positions) > 1:
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
    else:
        step = normal * float(first.get("SliceThickness", 1) or 1)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_spacing               # along i (columns)
    lps[:3, 1] = col_dir * row_spacing               # along j (rows)
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    img = nib.Nifti1Image(data, ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    return img


def _write_atomic(img: nib.Nifti1Image, target: Path) -> None:
    tmp = target.with_name(target.name + ".part.nii.gz")
    nib.save(img, str(tmp))
    os.replace(tmp, target)


def _safe(uid: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in uid)[:128]
