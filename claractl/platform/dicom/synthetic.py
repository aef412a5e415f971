"""Synthetic CT series for protocol tests and benchmarks (not anatomy: see the demo phantom).

Each slice is a valid DICOM Part 10 file: CT Image Storage, explicit VR little endian, fresh
UIDs, 512×512 16-bit pixels with a simple per-slice pattern so slices differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid


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
    """Write `slices` CT files into `out_dir` (created); return their paths in slice order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    yy, xx = np.mgrid[0:size, 0:size]
    radius2 = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2).astype(np.float64)
    paths = []
    for i in range(slices):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = out / f"ct_{series_number:03d}_{i:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientID = patient_id
        ds.PatientName = "Synthetic^CT"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyDate = ds.SeriesDate = "20260101"
        ds.StudyTime = ds.SeriesTime = "120000"
        ds.AccessionNumber = "SYN" + str(series_number)
        ds.StudyID = "1"
        ds.Modality = "CT"
        ds.Manufacturer = "claractl synthetic"
        ds.SeriesNumber = series_number
        ds.InstanceNumber = i + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelSpacing = [0.8, 0.8]
        ds.SliceThickness = 1.0
        ds.ImagePositionPatient = [-204.8, -204.8, float(i)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = float(i)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        # A disc whose radius changes along z, plus a ramp: slices differ, compress poorly-ish.
        disc = radius2 < (size / 3 + 20 * np.sin(i / 10.0)) ** 2
        pixels = (disc * 1000 + (xx + i) % 97).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
