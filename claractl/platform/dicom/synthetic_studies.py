"""Many distinct synthetic DICOM instances, fast: for soak tests and load benchmarks.

A study is written from one template file per modality (pydicom writes it once); each instance
is the template's bytes with its Study, Series and SOP Instance UIDs replaced in place. The
replacement UIDs have the placeholders' exact length, so no length field changes and a copy
costs a few microseconds instead of a pydicom write.

    factory = StudyFactory(scale={"CR": 0.25})
    paths = factory.write_study(out_dir, "CT", instances=300)      # one study, one series
    # each file is named <SOP Instance UID>.dcm

Modalities and their per-instance shape follow what a hospital sends (see MODALITIES); the
pixels are a pattern, not anatomy.
"""

from __future__ import annotations

import io
import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

_ROOT = "1.2.826.0.1.3680043.8.498."          # pydicom's UID root
_WIDTH = 30                                    # digits of the last UID component after its leading 1
# Placeholders in the templates; a copy replaces each with a fresh UID of the same length.
_STUDY, _SERIES, _SOP = (f"{_ROOT}1{d * _WIDTH}".encode() for d in "987")
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"          # (7FE0,0010), little endian: UIDs are all before it


@dataclass(frozen=True)
class Modality:
    sop_class: str
    rows: int
    columns: int
    samples: int = 1        # 3 = RGB
    bits: int = 16


# Per-instance shape of the studies a radiology department sends (uncompressed sizes):
# CR one or two 2 k × 2.5 k radiographs (~10 MB each); US a few dozen 640 × 480 RGB frames
# (~0.9 MB); CT hundreds of 512 × 512 slices (0.5 MB); MR a few hundred 256 × 256 slices (128 kB).
MODALITIES: dict[str, Modality] = {
    "CR": Modality("1.2.840.10008.5.1.4.1.1.1", 2048, 2500),
    "US": Modality("1.2.840.10008.5.1.4.1.1.6.1", 480, 640, samples=3, bits=8),
    "CT": Modality("1.2.840.10008.5.1.4.1.1.2", 512, 512),
    "MR": Modality("1.2.840.10008.5.1.4.1.1.4", 256, 256),
}


def _template(modality: str, shape: Modality, rows: int, columns: int, with_study: bool) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = shape.sop_class
    meta.MediaStorageSOPInstanceUID = _SOP.decode()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("template", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = shape.sop_class
    ds.SOPInstanceUID = _SOP.decode()
    if with_study:
        ds.StudyInstanceUID = _STUDY.decode()
    ds.SeriesInstanceUID = _SERIES.decode()
    ds.Modality = modality
    ds.PatientID, ds.PatientName = "SYNTHLOAD", "Synthetic^Load"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "120000", "LOAD1"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = shape.samples
    ds.PhotometricInterpretation = "RGB" if shape.samples == 3 else "MONOCHROME2"
    if shape.samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = shape.bits
    ds.HighBit, ds.PixelRepresentation = shape.bits - 1, 0
    yy, xx = np.mgrid[0:rows, 0:columns]
    pattern = ((xx + yy) % 251).astype(np.uint16 if shape.bits == 16 else np.uint8)
    if shape.samples == 3:
        pattern = np.repeat(pattern[:, :, None], 3, axis=2)
    ds.PixelData = np.ascontiguousarray(pattern).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class StudyFactory:
    """Writes studies of distinct instances from per-modality templates (see module doc)."""

    def __init__(self, *, scale: dict[str, float] | None = None, seed: int | None = None) -> None:
        # scale: modality → linear factor on rows and columns (tests use small images)
        self.scale = scale or {}
        self._templates: dict[tuple[str, bool], tuple[bytes, int]] = {}
        rng = random.Random(seed)
        self._run = rng.randrange(10 ** 14, 10 ** 15)        # distinct UIDs across runs and factories
        self._counter = itertools.count(1)

    def template(self, modality: str, with_study: bool = True) -> tuple[bytes, int]:
        """(template bytes, offset of its pixel data element)."""
        key = (modality, with_study)
        if key not in self._templates:
            shape = MODALITIES[modality]
            f = self.scale.get(modality, 1.0)
            data = _template(modality, shape, max(8, int(shape.rows * f)), max(8, int(shape.columns * f)),
                             with_study)
            self._templates[key] = (data, data.index(_PIXEL_DATA_TAG))
        return self._templates[key]

    def new_uid(self) -> str:
        uid = f"{_ROOT}1{self._run:015d}{next(self._counter):015d}"
        assert len(uid) == len(_SOP)
        return uid

    def instance_bytes(self, modality: str, study_uid: str | None, series_uid: str, sop_uid: str) -> bytes:
        """One instance; `study_uid` None: without a Study Instance UID."""
        data, pixel_at = self.template(modality, study_uid is not None)
        header = (data[:pixel_at].replace(_STUDY, (study_uid or "").encode()).replace(_SERIES, series_uid.encode())
                  .replace(_SOP, sop_uid.encode()))
        return header + data[pixel_at:]

    def write_study(self, out_dir: str | Path, modality: str, instances: int, *,
                    without_study_uid: int = 0, study_uid: str | None = None) -> list[Path]:
        """`instances` files of one new study (one series; `study_uid` or a new one) in `out_dir`;
        the last `without_study_uid` of them have no Study Instance UID (a receiver that groups
        by study must refuse them)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        study, series = study_uid or self.new_uid(), self.new_uid()
        paths = []
        for i in range(instances):
            sop = self.new_uid()
            data = self.instance_bytes(modality, None if i >= instances - without_study_uid else study, series, sop)
            path = out / f"{sop}.dcm"
            path.write_bytes(data)
            paths.append(path)
        return paths

