"""The render back end over HTTP (no browser): access control, the renderserver export agent,
DICOM-only jobs converted to NIfTI, payload/log routes, SSE, and 404s."""

from __future__ import annotations

import json
import time

import httpx
import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from claractl.platform.render import create_app
from claractl.platform.store.models import ExportState, ExportTask, Job

from .support import SERIES_UID, add_job, ct_phantom, make_platform, write_ct_series


# -- access -----------------------------------------------------------------------------------

@pytest.fixture
def exposed(tmp_path, built_ui):
    """A platform whose API listens on all interfaces, with a token."""
    rp = make_platform(tmp_path, host="0.0.0.0", token="s3cret-token")
    yield rp, TestClient(create_app(rp.service))
    rp.store.dispose()


def test_exposed_platform_needs_the_token_for_pages_and_data(exposed):
    rp, client = exposed
    job_id = add_job(rp)
    for path in ("/ui/", f"/ui/jobs/{job_id}"):
        r = client.get(path)
        assert r.status_code == 401 and "API token" in r.text and "s3cret" not in r.text
    for path in ("/api/v1/render/jobs", f"/api/v1/render/jobs/{job_id}/viewer", "/api/v1/render/events",
                 f"/api/v1/render/jobs/{job_id}/files/operators/dicom-reader/{SERIES_UID}.nii.gz"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.json()["detail"].startswith("this dashboard needs the platform API token")
    assert client.get("/api/v1/render/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/api/v1/render/jobs", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and r.json()["jobs"][0]["id"] == job_id


def test_token_in_the_url_once_becomes_a_cookie(exposed):
    rp, client = exposed
    job_id = add_job(rp)
    r = client.get(f"/ui/jobs/{job_id}?token=wrong", follow_redirects=False)
    assert r.status_code == 401 and "not accepted" in r.text and "clara_token" not in r.headers.get("set-cookie", "")
    r = client.get(f"/ui/jobs/{job_id}?token=s3cret-token&x=1", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/ui/jobs/{job_id}?x=1"      # token gone from the address bar
    cookie = r.headers["set-cookie"]
    assert "clara_token=s3cret-token" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    # The client now holds the cookie: pages and data work without a header.
    assert client.get(f"/ui/jobs/{job_id}").status_code == 200
    assert client.get(f"/api/v1/render/jobs/{job_id}").json()["id"] == job_id


def test_exposed_platform_without_a_token_stays_closed(tmp_path, built_ui, monkeypatch):
    monkeypatch.delenv("CLARA_API_TOKEN", raising=False)
    rp = make_platform(tmp_path, host="0.0.0.0")
    client = TestClient(create_app(rp.service))
    r = client.get("/api/v1/render/jobs")
    assert r.status_code == 401 and "no API token is set" in r.json()["detail"]
    # The token the API server generates in the state dir opens it.
    (rp.config.root / "api-token").write_text("generated-token\n")
    assert client.get("/api/v1/render/jobs", headers={"Authorization": "Bearer generated-token"}).status_code == 200


def test_loopback_platform_is_open(platform):
    assert httpx.get(platform.url + "/api/v1/render/jobs").status_code == 200
    r = httpx.get(platform.url + "/", follow_redirects=True)
    assert r.status_code == 200 and str(r.url).endswith("/ui/") and "/ui/assets/" in r.text


# -- the renderserver agent -------------------------------------------------------------------

def _task(rp, job_id, files):
    with rp.store.session() as s:
        task = ExportTask(job_id=job_id, agent="renderserver", files=files)
        s.add(task)
        s.flush()
        return task.id


def test_agent_indexes_listed_files_and_marks_the_task_succeeded(platform):
    job_id = add_job(platform)
    volume = f"operators/dicom-reader/{SERIES_UID}.nii.gz"
    label = f"operators/ai-inference/{SERIES_UID}.nii.gz"
    task_id = _task(platform, job_id, [volume, label])
    platform.service.start()                      # the agent thread picks the task up
    deadline = time.monotonic() + 10
    while True:
        with platform.store.session() as s:
            task = s.get(ExportTask, task_id)
            if task.state == ExportState.SUCCEEDED or time.monotonic() > deadline:
                break
        time.sleep(0.1)
    assert task.state == ExportState.SUCCEEDED
    assert task.file_status == {volume: "indexed as volume", label: "indexed as label"}
    index = json.loads((platform.config.root / "render" / "index" / f"{job_id}.json").read_text())
    assert {(e["path"], e["kind"]) for e in index} == {(volume, "volume"), (label, "label")}
    viewer = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert viewer["series"][0]["origin"] == "renderserver"
    assert [s["name"] for s in viewer["series"][0]["segments"]] == ["liver", "spleen"]


def test_agent_retries_missing_files_then_fails_and_rejects_paths_outside_the_payload(platform):
    job_id = add_job(platform)
    task_id = _task(platform, job_id, ["operators/ai-inference/late.nii.gz", "../../../etc/passwd"])
    agent = platform.service.agent
    assert agent.run_once() == 1
    with platform.store.session() as s:
        task = s.get(ExportTask, task_id)
        assert task.state == ExportState.PENDING and task.attempts == 1 and task.next_attempt_at is not None
        assert task.file_status["../../../etc/passwd"] == "rejected: outside the job payload"
        assert task.file_status["operators/ai-inference/late.nii.gz"] == "missing"
        task.max_attempts, task.next_attempt_at = 2, None
    assert agent.run_once() == 1
    with platform.store.session() as s:
        task = s.get(ExportTask, task_id)
        assert task.state == ExportState.FAILED and "missing after 2 attempts" in task.message


def test_agent_publishes_a_folder_of_volumes(platform):
    job_id = add_job(platform)
    task_id = _task(platform, job_id, ["operators/dicom-reader"])
    platform.service.agent.run_once()
    with platform.store.session() as s:
        task = s.get(ExportTask, task_id)
        assert task.state == ExportState.SUCCEEDED
        assert task.file_status == {"operators/dicom-reader": "indexed 1 volume file(s)"}


# -- DICOM-only jobs --------------------------------------------------------------------------

def test_dicom_only_job_is_converted_to_nifti_once_and_cached(platform):
    job_id = add_job(platform, with_volume=False)
    with platform.store.session() as s:
        payload_id = s.get(Job, job_id).payload_id
    volume, _ = ct_phantom((24, 20, 6))
    write_ct_series(platform.config.payloads_dir / payload_id / "input", volume, series_uid="1.2.3.4.5")
    # A non-DICOM file in the input is skipped, not an error.
    (platform.config.payloads_dir / payload_id / "input" / "README.txt").write_text("not DICOM")

    info = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert info["message"] is None
    (series,) = info["series"]
    assert series["origin"] == "dicom" and series["label_url"] is None
    assert series["volume_url"].endswith("/volume.nii.gz")
    data = httpx.get(platform.url + series["volume_url"]).content
    img = nib.Nifti1Image.from_bytes(__import__("gzip").decompress(data))
    assert img.shape == volume.shape
    np.testing.assert_array_equal(np.asarray(img.dataobj), volume)     # HU after rescale, slices in order
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    np.testing.assert_allclose(nib.affines.voxel_sizes(img.affine), (0.7, 0.8, 2.5))
    np.testing.assert_allclose(img.affine[:3, 3], (20.0, 30.0, 100.0))   # LPS (-20,-30,100) in RAS

    cached = platform.config.root / "render" / "cache" / job_id / "1.2.3.4.5.nii.gz"
    mtime = cached.stat().st_mtime_ns
    httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer")
    assert cached.stat().st_mtime_ns == mtime


def test_job_without_any_image_says_so(platform):
    job_id = add_job(platform, with_volume=False)
    info = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert info["series"] == [] and "no image volume" in info["message"]


# -- routes -----------------------------------------------------------------------------------

def test_pages_carry_a_content_security_policy(platform):
    r = httpx.get(platform.url + "/ui/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-content-type-options"] == "nosniff"


def test_unknown_job_and_pages_are_404(platform):
    assert httpx.get(platform.url + "/ui/jobs/nope").status_code == 404
    assert httpx.get(platform.url + "/ui/jobs/nope/viewer").status_code == 404
    assert httpx.get(platform.url + "/ui/nothing-here").status_code == 404
    r = httpx.get(platform.url + "/api/v1/render/jobs/nope")
    assert r.status_code == 404 and r.json() == {"detail": "no job nope"}


def test_payload_files_and_logs(platform):
    job_id = add_job(platform)
    base = f"{platform.url}/api/v1/render/jobs/{job_id}"
    r = httpx.get(f"{base}/files/operators/ai-inference/labels.json")
    assert r.status_code == 200 and r.json() == {"1": "liver", "2": "spleen"}
    assert httpx.get(f"{base}/files/..%2F..%2Fclara.db").status_code == 404
    assert httpx.get(f"{base}/files/operators/nothing").status_code == 404
    r = httpx.get(f"{base}/logs/ai-inference")
    assert r.status_code == 200 and "ai-inference: done" in r.text
    r = httpx.get(f"{base}/logs/not-an-operator")
    assert r.status_code == 404 and "has no operator not-an-operator" in r.json()["detail"]
    detail = httpx.get(base).json()
    assert [o["name"] for o in detail["operators"]] == ["dicom-reader", "ai-inference", "dicom-seg-writer",
                                                         "register-volume-images-for-rendering"]
    assert all(o["has_log"] and o["duration"] > 0 for o in detail["operators"])


def test_events_stream_announces_a_new_job(platform):
    with httpx.stream("GET", platform.url + "/api/v1/render/events", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "retry: 2000"
        assert next(lines) == "event: hello"
        add_job(platform)
        for line in lines:
            if line.startswith("data:") and "topics" in line:
                topics = json.loads(line[5:])["topics"]
                if "jobs" in topics:
                    break
        else:
            pytest.fail("no change event")


def test_agent_publishes_dicom_series_and_tells_seg_apart(platform):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    job_id = add_job(platform, with_volume=False)
    with platform.store.session() as s:
        payload_id = s.get(Job, job_id).payload_id
    root = platform.config.payloads_dir / payload_id
    volume, _ = ct_phantom((16, 12, 4))
    write_ct_series(root / "operators" / "anonymiser", volume, series_uid="9.8.7")
    seg = pydicom.Dataset()
    seg.file_meta = FileMetaDataset()
    seg.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    seg.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    seg.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    seg.Modality, seg.SOPClassUID = "SEG", seg.file_meta.MediaStorageSOPClassUID
    (root / "operators" / "dicom-seg-writer").mkdir(parents=True)
    seg.save_as(root / "operators" / "dicom-seg-writer" / "seg.dcm", enforce_file_format=True)

    files = ["operators/anonymiser/slice-001.dcm", "operators/anonymiser/slice-002.dcm",
             "operators/anonymiser/slice-003.dcm", "operators/anonymiser/slice-004.dcm",
             "operators/dicom-seg-writer/seg.dcm"]
    task_id = _task(platform, job_id, files)
    platform.service.agent.run_once()
    with platform.store.session() as s:
        task = s.get(ExportTask, task_id)
        assert task.state == ExportState.SUCCEEDED
        assert task.file_status["operators/dicom-seg-writer/seg.dcm"].startswith("indexed (DICOM SEG")
        assert task.file_status["operators/anonymiser/slice-001.dcm"] == \
            "indexed (DICOM image: converted to NIfTI when viewed)"
    (series,) = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()["series"]
    assert series["key"] == "9.8.7" and series["origin"] == "dicom"
    assert httpx.get(platform.url + series["volume_url"]).status_code == 200


def test_job_whose_payload_was_removed_says_so(platform):
    import shutil

    job_id = add_job(platform)
    with platform.store.session() as s:
        payload_id = s.get(Job, job_id).payload_id
    shutil.rmtree(platform.config.payloads_dir / payload_id)
    info = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()
    assert info["series"] == [] and "payload has been removed" in info["message"]
    detail = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}").json()
    assert detail["payload_files"] == {"files": [], "truncated": False, "exists": False}


def test_reduced_volume_for_cpu_rendering_keeps_volume_and_labels_on_one_grid(platform):
    job_id = add_job(platform)                     # 64×64×48 phantom, 2×2×3 mm
    (series,) = httpx.get(f"{platform.url}/api/v1/render/jobs/{job_id}/viewer").json()["series"]
    import gzip

    def load(url):
        r = httpx.get(platform.url + url)
        assert r.status_code == 200
        return nib.Nifti1Image.from_bytes(gzip.decompress(r.content))

    full = load(series["volume_url"])
    small = load(series["volume_url"] + "?max_dim=30")
    labels = load(series["label_url"] + "?max_dim=30")
    assert small.shape == labels.shape == (22, 22, 24)          # strides 3, 3, 2
    np.testing.assert_allclose(nib.affines.voxel_sizes(small.affine), (6.0, 6.0, 6.0))
    np.testing.assert_array_equal(np.asarray(small.dataobj), np.asarray(full.dataobj)[::3, ::3, ::2])
    np.testing.assert_allclose(small.affine, labels.affine)
    assert set(np.unique(np.asarray(labels.dataobj))) == {0, 1, 2}   # label values kept, not blended
    # Small enough already: the original file.
    assert load(series["volume_url"] + "?max_dim=64").shape == full.shape
    assert httpx.get(platform.url + series["volume_url"] + "?max_dim=3").status_code == 422


@pytest.mark.postgres
def test_dashboard_data_events_and_agent_on_postgresql(tmp_path, built_ui, postgres_url):
    from claractl.platform.render.events import fingerprints

    rp = make_platform(tmp_path, database=postgres_url)
    try:
        client = TestClient(create_app(rp.service))
        with rp.store.session() as s:
            before = fingerprints(s)
        job_id = add_job(rp, source_ae="PG_SCANNER")
        with rp.store.session() as s:
            after = fingerprints(s)
        assert after["jobs"] != before["jobs"] and after["config"] != before["config"]
        rows = client.get("/api/v1/render/jobs", params={"source": "pg_scanner", "state": "stopped"}).json()["jobs"]
        assert [r["id"] for r in rows] == [job_id]
        detail = client.get(f"/api/v1/render/jobs/{job_id}").json()
        assert len(detail["operators"]) == 4 and detail["source_ae"] == "PG_SCANNER"
        assert client.get("/api/v1/render/overview").json()["pipelines"][0]["name"] == "ct-organ-seg"
        task_id = _task(rp, job_id, [f"operators/dicom-reader/{SERIES_UID}.nii.gz"])
        assert rp.service.agent.run_once() == 1
        with rp.store.session() as s:
            assert s.get(ExportTask, task_id).state == ExportState.SUCCEEDED
    finally:
        rp.store.dispose()


def test_job_search_is_literal_text_in_name_or_id(platform):
    plain = add_job(platform, name="ct_chest 100%")
    other = add_job(platform, name="ctXchest 1000")
    def ids(q):
        return {r["id"] for r in httpx.get(f"{platform.url}/api/v1/render/jobs", params={"q": q}).json()["jobs"]}
    assert ids("ct_chest") == {plain}              # "_" is not a wildcard
    assert ids("100%") == {plain}                  # nor is "%"
    assert ids("CHEST") == {plain, other}          # case-insensitive
    assert ids(other[:8]) == {other}               # id prefix
