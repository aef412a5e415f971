"""A script written the way Clara's documentation writes one runs against claractl unchanged
apart from the server address: pipeline from a PDL file, job with a new payload, DICOM upload,
start with variables, poll until STOPPED, download results, read every operator's logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from claractl.platform.dicom.synthetic import make_ct_series
from tests.clara_api.support import ct_pipeline, run_client

SCRIPT = Path(__file__).parent / "scripts" / "clara_docs_workflow.py"


def with_address(text: str, port: int) -> str:
    """The script with its two address lines pointed at the test platform (nothing else changes)."""
    text, n_ip = re.subn(r'^clara_ip_address = ".*"$', 'clara_ip_address = "127.0.0.1"', text, flags=re.M)
    text, n_port = re.subn(r'^clara_port = ".*"$', f'clara_port = "{port}"', text, flags=re.M)
    assert (n_ip, n_port) == (1, 1)
    return text


def test_clara_documented_workflow_runs_unchanged(clara, tmp_path):
    ct_pipeline(tmp_path, "ct-volume").rename(tmp_path / "ct_volume_pipeline.yaml")
    make_ct_series(tmp_path / "ct-input" / "dcm", slices=6, size=32)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    original = SCRIPT.read_text()
    script = with_address(original, clara.port)
    changed = [old for old, new in zip(original.splitlines(), script.splitlines()) if old != new]
    assert changed == ['clara_ip_address = "10.0.0.1"', 'clara_port = "31851"']

    job_id, payload_id, pipeline_id, status = run_client(script, cwd=work, timeout=300).split()
    assert status == "1"                                   # JobStatus.Healthy

    # The same job through the HTTP API: one id, spelled Clara's way by the Clara API.
    job = clara.rest.get_job(job_id)
    assert (job["clara_id"], job["status"], job["pipeline"]) == (job_id, "HEALTHY", "ct-volume")
    assert job["payload_id"].replace("-", "") == payload_id and job["pipeline_id"].replace("-", "") == pipeline_id
    assert {f["path"] for f in clara.rest.list_payload_files(job["payload_id"]) if f["path"].startswith("input/")} \
        == {f"input/{p.name}" for p in (tmp_path / "ct-input" / "dcm").iterdir()}

    results = work / "results"
    summary = json.loads((results / "summary.json").read_text())
    assert summary["label"] == "from-start-job"
    assert list(summary["volumes"].values()) == [[32, 32, 6]]
    assert (results / next(iter(summary["volumes"]))).stat().st_size > 0       # the NIfTI itself
    assert "summary: 1 volume(s), label from-start-job" in (results / "summary.log").read_text()
    assert "operator dicom-reader starts" in (results / "dicom-reader.log").read_text()
