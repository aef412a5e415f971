"""Collect DICOM image slices by series and assemble each series into a volume.

Geometry: slices are sorted by their position along the slice normal (row × column direction
cosines); the voxel → patient (LPS) matrix has columns row_dir·Δcol, col_dir·Δrow,
normal·Δslice and the first slice's position; NIfTI wants RAS, so x and y are negated.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..common.errors import OperatorError

log = logging.getLogger("dicom-reader")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_REQUIRED = ("SeriesInstanceUID", "Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


@dataclass
class Slice:
    path: Path
    header: pydicom.Dataset


@dataclass
class Volume:
    series_uid: str
    voxels: np.ndarray  # (columns, rows, slices), HU after rescale
    affine_ras: np.ndarray
    metadata: dict = field(default_factory=dict)


def scan(root: Path) -> tuple[dict[str, list[Slice]], list[str]]:
    """Image slices by SeriesInstanceUID under root (recursive), plus notes on skipped files."""
    if not root.is_dir():
        raise OperatorError(f"input directory {root} does not exist")
    series: dict[str, list[Slice]] = defaultdict(list)
    skipped = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
            skipped.append(f"{path.relative_to(root)}: not DICOM ({type(exc).__name__})")
            continue
        missing = [k for k in _REQUIRED if k not in ds]
        if missing:
            skipped.append(f"{path.relative_to(root)}: not a cross-sectional image (no {', '.join(missing)})")
            continue
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            skipped.append(f"{path.relative_to(root)}: multi-frame images are not supported")
            continue
        series[str(ds.SeriesInstanceUID)].append(Slice(path, ds))
    return dict(series), skipped


def _direction(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    if np.linalg.norm(normal) < 1e-3:
        raise ValueError("ImageOrientationPatient row and column directions are parallel")
    return row, col, normal / np.linalg.norm(normal)


@dataclass
class Geometry:
    slices: list[Slice]  # sorted along the slice normal, duplicates and odd slices left out
    affine_lps: np.ndarray
    spacing: tuple[float, float, float]  # column, row, slice (mm)

    @property
    def affine_ras(self) -> np.ndarray:
        return LPS_TO_RAS @ self.affine_lps

    @property
    def shape(self) -> tuple[int, int, int]:
        h = self.slices[0].header
        return int(h.Columns), int(h.Rows), len(self.slices)


def geometry(series_uid: str, slices: list[Slice]) -> Geometry:
    """Sort by position along the normal and derive the voxel → LPS matrix (headers only)."""
    first = slices[0].header
    where = f"series {series_uid}"
    try:
        row, col, normal = _direction(first)
    except ValueError as exc:
        raise OperatorError(f"{slices[0].path}: {exc}") from exc
    # Keep slices of the first slice's geometry; a series mixing orientations or sizes is unusual.
    keep = []
    for s in slices:
        h = s.header
        same = (h.Rows, h.Columns) == (first.Rows, first.Columns) and np.allclose(
            [float(v) for v in h.ImageOrientationPatient], [float(v) for v in first.ImageOrientationPatient], atol=1e-4
        )
        if same:
            keep.append(s)
        else:
            log.warning("%s: %s has a different size or orientation; left out", where, s.path.name)
    positions = np.array([[float(v) for v in s.header.ImagePositionPatient] for s in keep])
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    keep = [keep[i] for i in order]
    dist, positions = dist[order], positions[order]
    dup = np.concatenate([[False], np.diff(dist) < 1e-3])
    if dup.any():
        log.warning("%s: %d slices share a position with another; keeping the first", where, int(dup.sum()))
        keep = [s for s, d in zip(keep, dup) if not d]
        dist, positions = dist[~dup], positions[~dup]
    if len(keep) > 1:
        gaps = np.diff(dist)
        step = float(np.median(gaps))
        if np.max(np.abs(gaps - step)) > 0.1 * step + 1e-3:
            log.warning("%s: uneven slice spacing (%.3f–%.3f mm); using the median %.3f mm", where, gaps.min(), gaps.max(), step)
    else:
        step = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)

    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    lps = np.eye(4)
    lps[:3, 0] = row * col_spacing  # along a row = increasing column index i
    lps[:3, 1] = col * row_spacing  # down a column = increasing row index j
    lps[:3, 2] = normal * step
    lps[:3, 3] = positions[0]
    return Geometry(keep, lps, (col_spacing, row_spacing, step))


def assemble(series_uid: str, slices: list[Slice], root: Path) -> Volume:
    """Sorted geometry, then pixels with each slice's rescale slope/intercept applied."""
    geo = geometry(series_uid, slices)
    keep, first = geo.slices, slices[0].header
    planes = []
    integral = True
    for s in keep:
        try:
            ds = pydicom.dcmread(s.path)
            pixels = ds.pixel_array
        except Exception as exc:
            raise OperatorError(f"{s.path}: cannot decode pixel data ({exc})") from exc
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        integral &= slope.is_integer() and intercept.is_integer()
        planes.append((pixels.astype(np.float64) * slope + intercept).T)  # (columns, rows)
    voxels = np.stack(planes, axis=2)
    if integral and voxels.min() >= -32768 and voxels.max() <= 32767:
        voxels = voxels.astype(np.int16)
    else:
        voxels = voxels.astype(np.float32)

    meta = {
        "SeriesInstanceUID": series_uid,
        "StudyInstanceUID": str(first.get("StudyInstanceUID", "")),
        "FrameOfReferenceUID": str(first.get("FrameOfReferenceUID", "")),
        "SOPClassUID": str(first.get("SOPClassUID", "")),
        "Modality": str(first.get("Modality", "")),
        "PatientID": str(first.get("PatientID", "")),
        "SeriesDescription": str(first.get("SeriesDescription", "")),
        "SeriesNumber": str(first.get("SeriesNumber", "")),
        "shape": list(voxels.shape),
        "spacing_mm": list(geo.spacing),
        "dtype": str(voxels.dtype),
        "sop_instance_uids": [str(s.header.SOPInstanceUID) for s in keep],
        "files": [str(s.path.relative_to(root)) for s in keep],
    }
    return Volume(series_uid, voxels, geo.affine_ras, meta)
