"""The audit trail end to end: the platform as its own process, a modality (dcmtk storescu) sends a
study, the no-op pipeline runs, the result goes to Orthanc; an unknown caller is rejected; API
writes configure it all. Every one of those is an audit event, read through the API and
`claractl audit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from peak_load.pacs import OrthancPacs  # noqa: E402
from peak_load.rig import CALLED_AE, PlatformRig  # noqa: E402

from claractl.platform.dicom.synthetic_studies import StudyFactory  # noqa: E402
from tests.dicom.conftest import dcmtk, wait_for  # noqa: E402


@pytest.fixture
def rig(tmp_path):
    pacs = OrthancPacs(tmp_path / "pacs").start()
    rig = PlatformRig(tmp_path, group_timeout=1, dicom={"host": "127.0.0.1"}, dashboard=True)
    try:
        rig.start()
        rig.configure(pacs.ae_title, pacs.dicom_port, ["MODALITY1"])
        yield rig, pacs
    finally:
        rig.stop()
        pacs.close()


def audit_cli(rig, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "claractl", "--no-color", "audit", "--api", rig.config.api_url,
                           *args], capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"})


def test_a_study_from_arrival_to_the_pacs_is_in_the_audit_trail(rig, tmp_path):
    rig, pacs = rig
    factory = StudyFactory(scale={"CT": 0.1})
    study_uid = factory.new_uid()
    files = factory.write_study(tmp_path / "study", "CT", 3, study_uid=study_uid)
    dcmtk("storescu", "-aet", "MODALITY1", "-aec", CALLED_AE, "127.0.0.1", str(rig.dicom_port), *map(str, files),
          check=True)
    refused = dcmtk("echoscu", "-aet", "INTRUDER", "-aec", CALLED_AE, "127.0.0.1", str(rig.dicom_port))
    assert refused.returncode != 0
    c = rig.client
    delivered = wait_for(lambda: [e for e in c.list_audit(kind="export") if e["action"] == "delivered"], timeout=60)

    events = list(reversed(c.list_audit(limit=1000)))
    by = {(e["kind"], e["action"]): e for e in events}
    # Associations: who, from where, accepted or refused and why.
    accepted = [e for e in events if e["kind"] == "association" and e["action"] == "accepted"
                and e["actor"] == "MODALITY1"]
    assert accepted and accepted[0]["target"] == CALLED_AE and accepted[0]["source"].startswith("127.0.0.1:")
    rejected = by[("association", "rejected")]
    assert rejected["actor"] == "INTRUDER" and rejected["outcome"] == 4
    assert "calling AE not recognised" in rejected["detail"]["reason"]
    # The study: received from MODALITY1, three instances, one job; by UIDs and Patient ID only.
    study = by[("study", "received")]
    job_id = study["job_id"]
    assert (study["actor"], study["target"], study["detail"]["instances"]) == ("MODALITY1", CALLED_AE, 3)
    assert study["study_uid"] == study_uid and study["patient_id"] == "SYNTHLOAD"
    # The job: created, started, stopped HEALTHY; then its export delivered to the PACS.
    assert [e["action"] for e in events if e["kind"] == "job" and e["job_id"] == job_id] == [
        "created", "started", "stopped"]
    assert by[("job", "stopped")]["detail"]["status"] == "HEALTHY"
    assert by[("export", "registered")]["job_id"] == job_id
    assert (delivered[0]["target"], delivered[0]["detail"]["ae_title"], delivered[0]["detail"]["files"]) == \
        ("pacs", pacs.ae_title, 1)
    # API writes: the configuration the rig made (PUT pipeline, AE title, source, destination).
    writes = {(e["action"], e["target"]) for e in events if e["kind"] == "api"}
    assert ("PUT", "/api/v1/destinations/pacs") in writes and ("PUT", f"/api/v1/ae-titles/{CALLED_AE}") in writes
    # No patient data beyond the Patient ID: nothing of the dataset's other attributes.
    assert "Synthetic^Load" not in json.dumps(events)

    # Filters: one study's events, failures only; and the CLI shows the same.
    assert {e["kind"] for e in c.list_audit(study_uid=study_uid)} == {"study", "job", "export"}
    assert [e["actor"] for e in c.list_audit(failures=True)] == ["INTRUDER"]
    out = audit_cli(rig, "--study", study_uid)
    assert out.returncode == 0, out.stderr
    assert "received" in out.stdout and "delivered" in out.stdout and "MODALITY1" in out.stdout
    out = audit_cli(rig, "--failures", "-o", "json")
    (only,) = json.loads(out.stdout)
    assert only["actor"] == "INTRUDER" and only["kind"] == "association"


def test_a_refused_api_write_is_audited_and_reading_the_trail_needs_the_token(tmp_path):
    """Off loopback: a write without the token is refused (401) and recorded as such; the trail
    itself is read with the token only (it names patients)."""
    from fastapi.testclient import TestClient

    from claractl.platform.api import ApiContext, create_app
    from claractl.platform.audit import trail
    from claractl.platform.config import PlatformConfig
    from claractl.platform.store import Store

    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.api.host = "0.0.0.0"
    store = Store(config.database_url)
    store.create_all()
    app = create_app(ApiContext(config, store, None, None, {}), token="s3cret")
    with TestClient(app) as http:
        assert http.put("/api/v1/sources/x", json={"ae_title": "X", "host": "10.0.0.1"}).status_code == 401
        ok = http.put("/api/v1/sources/x", json={"ae_title": "X", "host": "10.0.0.1"},
                      headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 201
        trail.flush(store)
        assert http.get("/api/v1/audit").status_code == 401
        events = http.get("/api/v1/audit", headers={"Authorization": "Bearer s3cret"}).json()
    assert [(e["actor"], e["outcome"], e["detail"]["status"]) for e in reversed(events)] == [
        ("api (refused: no valid token)", 4, 401), ("api (bearer token)", 0, 201)]
    assert all(e["target"] == "/api/v1/sources/x" and e["action"] == "PUT" for e in events)
    assert "s3cret" not in json.dumps(events)
    store.dispose()
