"""Synthetic CT series written as DICOM: the one CT slice/series writer, and a test pattern.

`write_ct_series` / `write_ct_slice` write axial CT Image Storage files (explicit VR little endian,
fresh SOP Instance UIDs, 16-bit pixels). They are shared by `make_ct_series` (protocol tests and
benchmarks: not anatomy) and tools/phantom.py (the demo/training phantom with ground truth), which
imports them from here because platform code never imports from tools/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

# Pixel Representation by pixel dtype (0 unsigned, 1 two's complement).
_PIXEL_REPRESENTATION = {np.dtype(np.uint16): 0, np.dtype(np.int16): 1}


def write_ct_slice(path: str | Path, pixels: np.ndarray, attributes: Mapping[str, object]) -> Path:
    """Write one axial CT slice as a DICOM Part 10 file with a fresh SOP Instance UID.

    `pixels` is rows × columns, uint16 or int16; it sets the Image Pixel module. `attributes`
    maps DICOM keywords to values for everything else (study/series/frame UIDs, patient,
    position, rescale, …).
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype not in _PIXEL_REPRESENTATION:
        raise ValueError(f"CT slice pixels must be a 2-D uint16 or int16 array, not {pixels.dtype} {pixels.shape}")
    path = Path(path)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = _PIXEL_REPRESENTATION[pixels.dtype]
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_ct_series(
    out_dir: str | Path,
    slices: Iterable[tuple[str, np.ndarray, Mapping[str, object]]],
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write (file name, pixels, attributes) slices into `out_dir` (created) as one CT series.

    All slices share the study UID, series UID (fresh when not given) and a fresh Frame of
    Reference UID; return the paths in the order of `slices`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    series = {
        "StudyInstanceUID": study_uid or generate_uid(),
        "SeriesInstanceUID": series_uid or generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
    }
    return [write_ct_slice(out / name, pixels, {**series, **attributes}) for name, pixels, attributes in slices]


def make_ct_series(
    out_dir: str | Path,
    slices: int = 200,
    *,
    size: int = 512,
    patient_id: str = "SYNTH001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
) -> list[Path]:
    """Write `slices` CT files (size × size, uint16, a per-slice pattern so slices differ) into
    `out_dir` (created); return their paths in slice order."""
    yy, xx = np.mgrid[0:size, 0:size]
    radius2 = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).astype(np.float64)

    def pattern(i: int) -> tuple[str, np.ndarray, dict]:
        # A disc whose radius changes along z, plus a ramp: slices differ, compress poorly-ish.
        disc = radius2 < (size / 3 + 20 * np.sin(i / 10.0)) ** 2
        pixels = (disc * 1000 + (xx + i) % 97).astype(np.uint16)
        attributes = {
            "PatientID": patient_id,
            "PatientName": "Synthetic^CT",
            "PatientBirthDate": "19700101",
            "PatientSex": "O",
            "StudyDate": "20260101", "SeriesDate": "20260101",
            "StudyTime": "120000", "SeriesTime": "120000",
            "AccessionNumber": "SYN" + str(series_number),
            "StudyID": "1",
            "Manufacturer": "claractl synthetic",
            "SeriesNumber": series_number,
            "InstanceNumber": i + 1,
            "PixelSpacing": [0.8, 0.8],
            "SliceThickness": 1.0,
            "ImagePositionPatient": [-204.8, -204.8, float(i)],
            "SliceLocation": float(i),
            "RescaleIntercept": -1024,
            "RescaleSlope": 1,
        }
        return f"ct_{series_number:03d}_{i:04d}.dcm", pixels, attributes

    return write_ct_series(out_dir, (pattern(i) for i in range(slices)), study_uid=study_uid, series_uid=series_uid)
