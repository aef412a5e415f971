"""The bundled operators as a Clara pipeline on a real local platform (store, engine, API,
embedded inference service): phantom study in, SEG out, export tasks created by register-results."""


import highdicom as hd
import numpy as np
import pydicom
import pytest
import yaml

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform
from operator_helpers import MODEL_DIR, REPO, dice
from phantom import LABELS
from tests.ports import free_port


def bundled(module: str, **changes) -> dict:
    entry = yaml.safe_load((REPO / "operators" / module / "operator.yaml").read_text())
    entry.update(changes)
    return entry


def pipeline_text() -> str:
    seg_results = bundled("register_results")
    seg_results["name"] = "register-seg"
    render = bundled("register_volume_images_for_rendering")
    operators = [bundled("dicom_reader"), bundled("ai_inference"), bundled("dicom_seg_writer"), seg_results, render]
    return yaml.safe_dump({"api-version": "0.6.0", "name": "ct-organ-seg", "operators": operators}, sort_keys=False)


@pytest.fixture
def platform(tmp_path):
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.api.port = free_port()
    config.dicom.enabled = False
    config.render.enabled = False
    config.inference.host = "127.0.0.1"
    config.inference.http_port, config.inference.grpc_port = free_port(), free_port()
    p = Platform(config)
    p.start()
    client = PlatformClient(config.api_url, token=p.token)
    yield p, client
    client.close()
    p.stop()


def test_bundled_pipeline_end_to_end(platform, demo_study, tmp_path):
    p, c = platform
    ph, study, info = demo_study
    c.put_model("ct-organs", MODEL_DIR)
    c.put_destination("pacs-main", "PACS1", "127.0.0.1", 4242)
    c.put_pipeline("ct-organ-seg", pipeline_text())
    payload = c.create_payload()
    c.upload_input_dir(payload["id"], study / "dicom")
    job = c.create_job("ct-organ-seg", payload_id=payload["id"])
    c.start_job(job["id"])
    job = c.wait_for_job(job["id"], timeout=240)
    logs = {op["name"]: c.get_job_logs(job["id"], op["name"]) for op in job["operators"]}
    assert job["status"] == "HEALTHY", logs

    tasks = c.list_export_tasks(job_id=job["id"])
    by_agent = {t["agent"]: t for t in tasks}
    assert set(by_agent) == {"ClaraSCU", "renderserver"}
    assert by_agent["ClaraSCU"]["destination"] == "pacs-main"
    assert by_agent["ClaraSCU"]["files"] == ["operators/dicom-seg-writer/seg.dcm"]
    uid = info["series_instance_uid"]
    assert f"operators/dicom-reader/{uid}.nii.gz" in by_agent["renderserver"]["files"]
    assert f"operators/ai-inference/{uid}.nii.gz" in by_agent["renderserver"]["files"]

    seg_file = c.download_payload_file(job["payload_id"], "operators/dicom-seg-writer/seg.dcm", tmp_path / "seg.dcm")
    seg = hd.seg.segread(seg_file)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    sources = sorted((pydicom.dcmread(f) for f in (study / "dicom").glob("*.dcm")),
                     key=lambda ds: float(ds.ImagePositionPatient[2]))
    arr = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True,
                                            skip_overlap_checks=True)
    decoded = np.transpose(arr, (2, 1, 0))
    for s in seg.SegmentSequence:
        d = dice((decoded == s.SegmentNumber).astype(np.uint8), (ph.labels == LABELS.index(s.SegmentLabel)).astype(np.uint8), 1)
        assert d >= 0.9, f"{s.SegmentLabel}: {d:.3f}"
