"""A script written the way Clara's documentation writes one runs against claractl unchanged
apart from the server address: pipeline from a PDL file, job with a new payload, DICOM upload,
start with variables, poll until STOPPED, download results, read every operator's logs."""

from __future__ import annotations

from claractl.platform.dicom.synthetic import make_ct_series
from tests.clara_api.support import check_workflow_results, ct_pipeline, docs_workflow, run_client


def test_clara_documented_workflow_runs_unchanged(clara, tmp_path):
    ct_pipeline(tmp_path, "ct-volume").rename(tmp_path / "ct_volume_pipeline.yaml")
    make_ct_series(tmp_path / "ct-input" / "dcm", slices=6, size=32)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    script = docs_workflow("127.0.0.1", clara.port)     # only the two address lines differ

    job_id, payload_id, pipeline_id, status = run_client(script, cwd=work, timeout=300).split()
    assert status == "1"                                   # JobStatus.Healthy

    # The same job through the HTTP API: one id, spelled Clara's way by the Clara API.
    job = clara.rest.get_job(job_id)
    assert (job["clara_id"], job["status"], job["pipeline"]) == (job_id, "HEALTHY", "ct-volume")
    assert job["payload_id"].replace("-", "") == payload_id and job["pipeline_id"].replace("-", "") == pipeline_id
    assert {f["path"] for f in clara.rest.list_payload_files(job["payload_id"]) if f["path"].startswith("input/")} \
        == {f"input/{p.name}" for p in (tmp_path / "ct-input" / "dcm").iterdir()}

    check_workflow_results(work / "results")
