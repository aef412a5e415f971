"""Orthanc as the PACS both ways, dcmtk storescp as a second destination, retries and give-up."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pydicom
import pytest
from sqlalchemy import select

from claractl.platform.dicom import DicomExportAgent
from claractl.platform.dicom.synthetic import make_ct_series
from claractl.platform.store.models import Destination, ExportState, ExportTask, Job, JobState
from tests.dicom.conftest import CALLED_AE, DCMTK, PEER_ENV, dataset_bytes, dcmtk, free_port, jobs, wait_for
from tests.ports import wait_listening


@pytest.fixture
def orthanc(tmp_path, adapter):
    http, dicom = free_port(), free_port()
    cfg = {
        "Name": "test-pacs", "StorageDirectory": str(tmp_path / "orthanc-db"),
        "IndexDirectory": str(tmp_path / "orthanc-db"), "HttpPort": http, "DicomPort": dicom,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomModalities": {"clara": [CALLED_AE, "127.0.0.1", adapter.port]},
        "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True, "Plugins": [],
        "DicomScuTimeout": 30, "StorageCompression": False,
    }
    cfg_path = tmp_path / "orthanc.json"
    cfg_path.write_text(json.dumps(cfg))
    log = open(tmp_path / "orthanc.log", "w")
    proc = subprocess.Popen(["/usr/sbin/Orthanc", str(cfg_path)], env=PEER_ENV, stdout=log, stderr=log)
    client = httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=60)

    def up():
        try:
            return client.get("/system").status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_for(up, timeout=30, interval=0.1)
        yield client, dicom
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def storescp(tmp_path):
    out = tmp_path / "storescp-out"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen([str(DCMTK / "storescp"), "-aet", "ARCHIVE", "-od", str(out), "+xa", str(port)],
                            env=PEER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)
    yield port, out
    proc.terminate()
    proc.wait(timeout=10)


def _agent(platform, associations=2) -> DicomExportAgent:
    config, store = platform
    return DicomExportAgent(config, store, associations=associations, poll_interval=0.05, backoff_base=0.1)


def _add_destination(store, name, ae, port):
    with store.session() as s:
        s.add(Destination(name=name, ae_title=ae, host="127.0.0.1", port=port))


def _add_task(store, job_id, destination, files, max_attempts=5, job_state=JobState.STOPPED) -> str:
    """An export task of the job, which has stopped (the agent sends only then) unless `job_state`."""
    with store.session() as s:
        s.get(Job, job_id).state = job_state
        t = ExportTask(job_id=job_id, agent="ClaraSCU", destination=destination, files=files,
                       max_attempts=max_attempts)
        s.add(t)
        s.flush()
        return t.id


def _task(store, task_id) -> ExportTask:
    with store.session() as s:
        return s.get(ExportTask, task_id)


def _write_results(config, job, n=3) -> list[Path]:
    """Stand in for the pipeline's output: a derived series in the job payload."""
    out = config.payloads_dir / job.payload_id / "operators" / "seg"
    return make_ct_series(out, n, size=32, study_uid=job.metadata_["study_uid"], series_number=99,
                          patient_id=job.metadata_["patient_id"])


def _receive_job_from_orthanc(orthanc, store, ct5):
    client, _ = orthanc
    for f in ct5:
        assert client.post("/instances", content=f.read_bytes()).status_code == 200
    (study,) = client.get("/studies").json()
    r = client.post("/modalities/clara/store", content=study)
    assert r.status_code == 200, r.text
    return wait_for(lambda: jobs(store), timeout=30)[0]


def test_orthanc_sends_study_and_result_comes_back(orthanc, platform, ct5):
    config, store = platform
    client, orthanc_port = orthanc
    job = _receive_job_from_orthanc(orthanc, store, ct5)
    assert job.metadata_["calling_ae"] == "ORTHANC" and job.metadata_["instances"] == 5
    assert len(list((config.payloads_dir / job.payload_id / "input").iterdir())) == 5
    results = _write_results(config, job)
    _add_destination(store, "pacs-main", "ORTHANC", orthanc_port)
    task_id = _add_task(store, job.id, "pacs-main", ["operators/seg"])
    agent = _agent(platform)
    agent.start()
    try:
        wait_for(lambda: _task(store, task_id).state in (ExportState.SUCCEEDED, ExportState.FAILED), timeout=30)
    finally:
        agent.stop()
    task = _task(store, task_id)
    assert task.state == ExportState.SUCCEEDED, task.message
    assert task.attempts == 1 and len(task.file_status) == 3
    assert all(v.startswith("SUCCESS 0x0000") for v in task.file_status.values())
    for f in results:
        uid = pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
        found = client.post("/tools/lookup", content=uid).json()
        assert [x["Type"] for x in found] == ["Instance"]
        stored = client.get(f"/instances/{found[0]['ID']}/file").content
        assert stored[132:].endswith(dataset_bytes(f))
    assert len(client.get("/instances").json()) == 5 + 3


def test_storescp_as_second_destination(adapter, platform, ct5, storescp):
    config, store = platform
    port, out = storescp
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
    for f in ct5:
        assert assoc.send_c_store(f).Status == 0
    assoc.release()
    job = wait_for(lambda: jobs(store))[0]
    results = _write_results(config, job, n=4)
    (config.payloads_dir / job.payload_id / "operators" / "seg" / "notes.txt").write_text("not dicom")
    _add_destination(store, "archive", "ARCHIVE", port)
    task_id = _add_task(store, job.id, "archive", ["operators/seg", "operators/seg/notes.txt", "../../etc/passwd"])
    agent = _agent(platform)
    assert agent.run_once()
    task = _task(store, task_id)
    assert task.state == ExportState.SUCCEEDED, task.message
    assert task.file_status["operators/seg/notes.txt"].startswith("SKIPPED")
    assert task.file_status["../../etc/passwd"].startswith("FAILED: path outside")
    got = sorted(dataset_bytes(p) for p in out.iterdir())
    assert got == sorted(dataset_bytes(p) for p in results)


def test_rejecting_destination_retries_with_backoff_then_fails(adapter, platform, ct5, tmp_path):
    config, store = platform
    port = free_port()
    refuser = subprocess.Popen([str(DCMTK / "storescp"), "--refuse", str(port)], env=PEER_ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from pynetdicom import AE
        from pynetdicom.sop_class import CTImageStorage
        ae = AE(ae_title="CLARATEST")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
        assert assoc.send_c_store(ct5[0]).Status == 0
        assoc.release()
        job = wait_for(lambda: jobs(store))[0]
        _write_results(config, job, n=2)
        _add_destination(store, "refuser", "ANY", port)
        _add_destination(store, "nobody", "ANY", free_port())
        t1 = _add_task(store, job.id, "refuser", ["operators/seg"], max_attempts=3)
        t2 = _add_task(store, job.id, "nobody", ["operators/seg"], max_attempts=2)
        t3 = _add_task(store, job.id, "not-configured", ["operators/seg"], max_attempts=2)
        t4 = _add_task(store, job.id, "refuser", ["operators/nothing-here"], max_attempts=3)
        agent = _agent(platform, associations=1)   # storescp serves one association at a time
        agent.start()
        try:
            done = lambda: all(_task(store, t).state == ExportState.FAILED for t in (t1, t3, t4))
            wait_for(done, timeout=30)
        finally:
            agent.stop()
        a, b, c, d = (_task(store, t) for t in (t1, t2, t3, t4))
        assert a.attempts == 3 and "gave up after 3 attempts" in a.message and "rejected" in a.message
        assert all(v.startswith("FAILED") for v in a.file_status.values()) and len(a.file_status) == 2
        # A destination nobody answers for is down, not refusing: waited for, not counted.
        assert b.state == ExportState.PENDING and b.attempts == 0 and b.next_attempt_at is not None
        assert "waiting for the destination" in b.message and "cannot connect" in b.message
        assert c.attempts == 2 and "not configured" in c.message
        assert d.attempts == 1 and "no DICOM files" in d.message     # retrying cannot help
        # Back-off: the attempts of `a` were spread out (0.1 s, then 0.2 s).
        assert (a.updated_at - a.created_at).total_seconds() >= 0.3
    finally:
        refuser.terminate()
        refuser.wait(timeout=10)


def test_interrupted_task_is_resumed_on_start(adapter, platform, ct5, storescp):
    config, store = platform
    port, out = storescp
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
    assert assoc.send_c_store(ct5[0]).Status == 0
    assoc.release()
    job = wait_for(lambda: jobs(store))[0]
    _write_results(config, job, n=1)
    _add_destination(store, "archive", "ARCHIVE", port)
    task_id = _add_task(store, job.id, "archive", ["operators/seg"])
    with store.session() as s:
        s.get(ExportTask, task_id).state = ExportState.IN_PROGRESS   # as a crash would leave it
    agent = _agent(platform)
    agent.start()
    try:
        wait_for(lambda: _task(store, task_id).state == ExportState.SUCCEEDED, timeout=20)
    finally:
        agent.stop()
    assert len(list(out.iterdir())) == 1


def test_tasks_of_a_running_job_wait_until_it_stops(adapter, platform, ct5, storescp):
    """A job re-run after a crash rewrites its outputs: nothing of it is sent before it stops."""
    config, store = platform
    port, out = storescp
    dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port), str(ct5[0]), check=True)
    job = wait_for(lambda: jobs(store))[0]
    _write_results(config, job, n=1)
    _add_destination(store, "archive", "ARCHIVE", port)
    task_id = _add_task(store, job.id, "archive", ["operators/seg"], job_state=JobState.RUNNING)
    agent = _agent(platform)
    assert agent.run_once() is False and _task(store, task_id).state == ExportState.PENDING
    with store.session() as s:
        s.get(Job, job.id).state = JobState.STOPPED
    assert agent.run_once() is True
    assert _task(store, task_id).state == ExportState.SUCCEEDED and len(list(out.iterdir())) == 1


def test_registering_the_same_results_again_finds_the_first_task(adapter, platform, ct5):
    """register-results of a job re-run after a crash: one task, so one delivery."""
    from claractl.platform.store.exports import create_export_task
    config, store = platform
    dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port), str(ct5[0]), check=True)
    job = wait_for(lambda: jobs(store))[0]
    with store.session() as s:
        first = create_export_task(s, job.id, "ClaraSCU", ["operators/seg/a.dcm", "operators/seg/b.dcm"], "pacs")
        again = create_export_task(s, job.id, "clarascu", ["operators/seg/b.dcm", "operators/seg/a.dcm"], "pacs")
        other = create_export_task(s, job.id, "ClaraSCU", ["operators/seg/a.dcm", "operators/seg/b.dcm"], "archive")
        assert again.id == first.id and other.id != first.id
        assert len(s.scalars(select(ExportTask).where(ExportTask.job_id == job.id)).all()) == 2


def test_a_destination_down_for_a_while_gets_the_results_when_it_is_back(adapter, platform, ct5, tmp_path):
    config, store = platform
    dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port), str(ct5[0]), check=True)
    job = wait_for(lambda: jobs(store))[0]
    results = _write_results(config, job, n=2)
    port = free_port()                        # nothing listens there yet: the PACS is down
    _add_destination(store, "archive", "ARCHIVE", port)
    task_id = _add_task(store, job.id, "archive", ["operators/seg"], max_attempts=2)
    agent = DicomExportAgent(config, store, poll_interval=0.05, backoff_base=0.2, backoff_max=0.5)
    agent.start()
    out = tmp_path / "back"
    out.mkdir()
    try:
        wait_for(lambda: agent.status()["attempts_failed"] >= 4, timeout=30)   # more than max_attempts
        waiting = _task(store, task_id)
        assert waiting.state == ExportState.PENDING and waiting.attempts == 0, waiting.message
        pacs = subprocess.Popen([str(DCMTK / "storescp"), "-aet", "ARCHIVE", "-od", str(out), str(port)],
                                env=PEER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _task(store, task_id).state in (ExportState.SUCCEEDED, ExportState.FAILED), timeout=30)
        finally:
            pacs.terminate()
            pacs.wait(timeout=10)
    finally:
        agent.stop()
    task = _task(store, task_id)
    assert (task.state, task.attempts) == (ExportState.SUCCEEDED, 1), task.message
    assert len(list(out.iterdir())) == len(results)
