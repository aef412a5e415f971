"""MetaImage volumes (`.mha`, or `.mhd` + its data file): what Clara's reference pipelines publish
for the render server. The viewer shows NIfTI, so a MetaImage is converted once (SimpleITK reads
it, including compressed data and its direction cosines, and writes NIfTI in RAS as ITK does) and
the NIfTI is cached; from then on it is a volume or label map like any other."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SUFFIXES = (".mha", ".mhd")


def is_metaimage(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIXES)


def stem(path: Path) -> str:
    name = path.name
    return name[: -len(".mha")] if name.lower().endswith(SUFFIXES) else name


def to_nifti(source: Path, target: Path) -> Path:
    """Convert `source` to `target` (.nii.gz) unless `target` is newer; atomic (temp + rename)."""
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    import SimpleITK as sitk       # loaded only when a MetaImage is shown

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name[:-len('.nii.gz')]}.part.nii.gz")
    try:
        sitk.WriteImage(sitk.ReadImage(str(source)), str(tmp), True)
        os.replace(tmp, target)
    except RuntimeError as exc:    # SimpleITK's error for unreadable files: keep its first line
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{source.name}: not a readable MetaImage ({str(exc).strip().splitlines()[0]})") from None
    return target


def voxels(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
