"""Test data for the render tests: jobs as the engine leaves them (store rows, NIfTI outputs, logs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nibabel as nib
import numpy as np

from claractl.platform.config import PlatformConfig
from claractl.platform.render import RenderService
from claractl.platform.store import Store
from claractl.platform.store.jobs import create_job
from claractl.platform.store.models import JobState, JobStatus, Payload, Pipeline

REFERENCE_PDL = {
    "api-version": "0.4.0",
    "name": "ct-organ-seg",
    "operators": [
        {"name": "dicom-reader", "container": {"image": "claractl/dicom-reader", "tag": "latest"},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}]},
        {"name": "ai-inference", "container": {"image": "claractl/ai-inference", "tag": "latest"},
         "input": [{"from": "dicom-reader", "path": "/input"}], "output": [{"path": "/output"}]},
        {"name": "dicom-seg-writer", "container": {"image": "claractl/dicom-seg-writer", "tag": "latest"},
         "input": [{"from": "ai-inference", "path": "/input/seg"}, {"from": "dicom-reader", "path": "/input/ct"}],
         "output": [{"path": "/output"}]},
        {"name": "register-volume-images-for-rendering",
         "container": {"image": "claractl/register-volume-images-for-rendering", "tag": "latest"},
         "input": [{"from": "dicom-reader", "path": "/input/ct"}, {"from": "ai-inference", "path": "/input/seg"}]},
    ],
}
SERIES_UID = "1.2.826.0.1.3680043.8.498.1"


@dataclass
class RenderPlatform:
    config: PlatformConfig
    store: Store
    service: RenderService
    url: str


def make_platform(tmp_path: Path, database: str = "sqlite", **api) -> RenderPlatform:
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.store.database = database
    config.render.port = 0            # tests serve the router themselves
    for key, value in api.items():
        setattr(config.api, key, value)
    config.root.mkdir(parents=True, exist_ok=True)
    store = Store(config.database_url)
    store.create_all()
    service = RenderService(config, store)
    return RenderPlatform(config, store, service, "")


# -- data ------------------------------------------------------------------------------------

def ct_phantom(shape=(64, 64, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like volume in HU (air, a soft-tissue body, a bright spine, an organ) and its labels."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    cx, cy = shape[0] / 2, shape[1] / 2
    volume = np.full(shape, -1000, dtype=np.int16)
    body = ((x - cx) / 26) ** 2 + ((y - cy) / 20) ** 2 <= 1
    volume[body] = 40
    spine = ((x - cx) / 5) ** 2 + ((y - cy - 12) / 5) ** 2 <= 1
    volume[spine] = 700
    organ = ((x - cx + 10) / 9) ** 2 + ((y - cy + 2) / 8) ** 2 + ((z - shape[2] / 2) / 10) ** 2 <= 1
    volume[organ] = 90
    other = ((x - cx - 11) / 6) ** 2 + ((y - cy + 4) / 6) ** 2 + ((z - shape[2] / 2) / 8) ** 2 <= 1
    labels = np.zeros(shape, dtype=np.uint8)
    labels[organ] = 1
    labels[other] = 2
    return volume, labels


def write_nifti(path: Path, data: np.ndarray, spacing=(2.0, 2.0, 3.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), str(path))
    return path


def add_pipeline(store: Store, definition=REFERENCE_PDL) -> None:
    with store.session() as s:
        if s.query(Pipeline).filter_by(name_key=definition["name"].lower()).first() is None:
            s.add(Pipeline(name=definition["name"], name_key=definition["name"].lower(),
                           definition_text="(test)", definition=definition, owner="radiology-ai"))


def add_job(
    rp: RenderPlatform,
    *,
    name: str = "ct-organ-seg",
    with_volume: bool = True,
    finished: bool = True,
    source_ae: str = "CT_SCANNER",
    logs: bool = True,
) -> str:
    """A job of the reference pipeline as the engine leaves it: rows, outputs, logs."""
    add_pipeline(rp.store)
    now = datetime.now(timezone.utc)
    with rp.store.session() as s:
        payload = Payload()
        s.add(payload)
        s.flush()
        pipeline = s.query(Pipeline).filter_by(name_key="ct-organ-seg").one()
        job = create_job(s, pipeline, payload, name=name, priority="higher", start=True,
                         metadata={"calling_ae": source_ae, "called_ae": "CLARA"})
        job.state = JobState.STOPPED if finished else JobState.RUNNING
        job.status = JobStatus.HEALTHY
        start = now - timedelta(seconds=12)
        job.started_at = start
        job.stopped_at = now if finished else None
        for i, op in enumerate(job.operators):
            op.state = JobState.STOPPED
            op.started_at = start + timedelta(seconds=3 * i)
            op.stopped_at = op.started_at + timedelta(seconds=2 + i)
            op.exit_code = 0
        job_id, payload_id, operators = job.id, payload.id, [op.name for op in job.operators]
    root = rp.config.payloads_dir / payload_id
    (root / "input").mkdir(parents=True, exist_ok=True)
    if with_volume:
        volume, labels = ct_phantom()
        write_nifti(root / "operators" / "dicom-reader" / f"{SERIES_UID}.nii.gz", volume)
        write_nifti(root / "operators" / "ai-inference" / f"{SERIES_UID}.nii.gz", labels)
        (root / "operators" / "ai-inference" / "labels.json").write_text('{"1": "liver", "2": "spleen"}')
    if logs:
        log_dir = rp.config.logs_dir / "jobs" / job_id
        log_dir.mkdir(parents=True, exist_ok=True)
        for op in operators:
            (log_dir / f"{op}.log").write_text(f"{op}: started\n{op}: processed series {SERIES_UID}\n{op}: done\n")
    return job_id


def write_ct_series(directory: Path, volume_hu: np.ndarray, series_uid: str = "1.2.3.4.5",
                    spacing=(0.8, 0.7), step: float = 2.5) -> list[Path]:
    """A real CT series (one DICOM file per slice, stored value = HU + 1024) written with pydicom.
    volume_hu is indexed (column i, row j, slice k) like the NIfTI the viewer expects."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    paths = []
    for k in range(volume_hu.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", "PHANTOM", study, series_uid
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-20.0, -30.0, 100.0 + k * step]
        ds.PixelSpacing = list(spacing)            # row spacing, column spacing
        ds.SliceThickness = step
        slice_ = volume_hu[:, :, k].T               # (rows, cols)
        ds.Rows, ds.Columns = slice_.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (slice_.astype(np.int32) + 1024).astype(np.uint16).tobytes()
        # Files named against slice order: the converter must sort by position, not by name.
        path = directory / f"slice-{volume_hu.shape[2] - k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
