"""The API suite, run against SQLite and against a real PostgreSQL (same tests, `database` param)."""

from __future__ import annotations

import io
import tarfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from claractl.platform.client import ApiError
from claractl.platform.store.digest import model_digest
from platform_helpers import identity_model, pdl, single_op_pipeline

NOOP = single_op_pipeline("noop", "noop.py", [])


@pytest.fixture
def api(database, start_platform):          # database first: torn down after the platform stops
    return start_platform(database)


def error(call, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as err:
        call(*args, **kw)
    return err.value


def test_pipelines_crud_with_owner_and_case_insensitive_names(api):
    c = api.client
    created = c.put_pipeline("Seg", NOOP, export=[{"agent": "ClaraSCU", "destinations": ["pacs"]}], owner="proj")
    assert created["name"] == "Seg" and created["owner"] == "proj"
    assert created["definition"]["operators"][0]["requests"] == {"cpu": 2, "gpu": 0, "memory": 1024}
    assert c.get_pipeline("seg")["definition_text"] == NOOP
    again = c.put_pipeline("seg", NOOP)
    assert again["id"] == created["id"] and again["owner"] is None and again["export"] == []
    assert [p["name"] for p in c.list_pipelines()] == ["seg"]
    c.delete_pipeline("SEG")
    assert error(c.get_pipeline, "seg").status == 404
    assert error(c.delete_pipeline, "seg").status == 404


def test_invalid_pipeline_is_422_naming_line_and_key(api):
    text = "api-version: '0.4.0'\nname: x\noperators:\n  - name: a\n    contaner: {}\n"
    err = error(api.client.put_pipeline, "x", text)
    assert err.status == 422
    assert "pipeline x:5" in err.detail and "contaner" in err.detail
    assert api.client.list_pipelines() == []


def test_ae_titles_sources_destinations_crud(api):
    c = api.client
    c.put_pipeline("seg", NOOP)
    ae = c.put_ae_title("ORGANSEG", ["seg"], group_by="0020,000E", timeout=2, priority="higher", owner="p")
    assert (ae["pipelines"], ae["group_by"], ae["priority"], ae["owner"]) == (["seg"], "0020,000E", "higher", "p")
    assert c.put_source("pacs-main", "PACS1", "127.0.0.1")["host"] == "127.0.0.1"
    assert c.put_destination("pacs-main", "PACS1", "127.0.0.1", 4242)["port"] == 4242
    assert c.put_destination("pacs-main", "PACS1", "127.0.0.1", 4243)["port"] == 4243
    assert [d["name"] for d in c.list_destinations()] == ["pacs-main"]
    assert [a["ae_title"] for a in c.list_ae_titles()] == ["ORGANSEG"]
    assert error(c.put_destination, "bad", "PACS1", "h", 70000).status == 422
    assert error(c.put_ae_title, "A" * 17, ["seg"]).status == 422
    c.delete_source("pacs-main")
    assert c.list_sources() == []
    assert error(c.get_ae_title, "NOPE").status == 404


def test_jobs_create_list_filter_and_status(api):
    c = api.client
    c.put_pipeline("seg", NOOP)
    payload = c.create_payload()
    job = c.create_job("seg", name="j1", priority="higher", payload_id=payload["id"], metadata={"study": "1.2.3"})
    assert (job["state"], job["priority"], job["input_payloads"], job["metadata"]) == (
        "PENDING", "higher", [payload["id"]], {"study": "1.2.3"})
    assert job["payload_id"] != payload["id"]         # a job's outputs go to a payload of its own
    assert [o["name"] for o in job["operators"]] == ["main"]
    other = c.create_job("seg")
    assert other["payload_id"] != payload["id"]
    c.start_job(job["id"])
    assert c.wait_for_job(job["id"], 30)["status"] == "HEALTHY"
    assert [j["id"] for j in c.list_jobs(state="STOPPED")] == [job["id"]]
    assert [j["id"] for j in c.list_jobs(state="PENDING")] == [other["id"]]
    assert {j["id"] for j in c.list_jobs(pipeline="seg")} == {job["id"], other["id"]}
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert c.list_jobs(created_after=later) == []
    assert error(c.get_job, "no-such-job").status == 404
    assert error(c.create_job, "nope").status == 404
    assert error(c.create_job, "seg", payload_id="missing").status == 404
    assert error(c.start_job, job["id"]).status == 409
    assert error(c.get_job_logs, job["id"], "nope").status == 404
    assert error(c.list_jobs, state="BOGUS").status == 422


def test_payload_upload_list_download_and_traversal(api, tmp_path):
    c = api.client
    payload = c.create_payload()
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40000)        # ~10 MB, streamed in 1 MB chunks
    assert c.upload_payload_file(payload["id"], "input/series/big.bin", big)["size"] == big.stat().st_size
    c.upload_payload_file(payload["id"], "input/a.txt", b"hello")
    assert c.list_payload_files(payload["id"]) == [
        {"path": "input/a.txt", "size": 5}, {"path": "input/series/big.bin", "size": big.stat().st_size}]
    out = c.download_payload_file(payload["id"], "input/series/big.bin", tmp_path / "copy.bin")
    assert out.read_bytes() == big.read_bytes()
    raw = httpx.Client(base_url=api.config.api_url)
    for bad in ["input/%2E%2E/%2E%2E/escape.txt", "%2E%2E/x", "input//x", "input/.upload-x.part"]:
        r = raw.put(f"/api/v1/payloads/{payload['id']}/files/{bad}", content=b"x")
        assert r.status_code in (400, 404), (bad, r.status_code)
        assert "detail" in r.json()
    assert not (api.config.payloads_dir / "escape.txt").exists()
    assert not (api.config.root / "escape.txt").exists()
    assert error(c.list_payload_files, "nope").status == 404
    assert error(c.download_payload_file, payload["id"], "input/none", tmp_path / "n").status == 404


def test_export_tasks_claim_succeed_fail_with_backoff_then_failed(api):
    c = api.client
    c.put_pipeline("seg", NOOP)
    job = c.create_job("seg")
    ok = c.create_export_task(job["id"], "ClaraSCU", ["operators/x/a.dcm"], destination="pacs")
    flaky = c.create_export_task(job["id"], "ClaraSCU", ["operators/x/b.dcm"], destination="pacs", max_attempts=2)
    c.create_export_task(job["id"], "renderserver", [])
    assert {t["id"] for t in c.list_export_tasks(agent="ClaraSCU", state="PENDING")} == {ok["id"], flaky["id"]}
    claimed = c.claim_export_tasks("ClaraSCU", limit=10)
    assert {t["id"] for t in claimed} == {ok["id"], flaky["id"]} and {t["state"] for t in claimed} == {"IN_PROGRESS"}
    assert c.claim_export_tasks("ClaraSCU") == []
    done = c.mark_export_succeeded(ok["id"], "sent", {"operators/x/a.dcm": "Success"})
    assert (done["state"], done["attempts"], done["file_status"]) == ("SUCCEEDED", 1, {"operators/x/a.dcm": "Success"})
    assert error(c.mark_export_failed, ok["id"]).status == 409
    first = c.mark_export_failed(flaky["id"], "association rejected")
    assert (first["state"], first["attempts"]) == ("PENDING", 1)
    due = datetime.fromisoformat(first["next_attempt_at"])
    assert due > datetime.now(timezone.utc)                       # back-off: not claimable yet
    assert c.claim_export_tasks("ClaraSCU") == []
    second = c.mark_export_failed(flaky["id"], "still down")
    assert (second["state"], second["attempts"], second["next_attempt_at"]) == ("FAILED", 2, None)
    assert error(c.create_export_task, "missing-job", "ClaraSCU", []).status == 404
    assert error(c.mark_export_succeeded, "missing").status == 404


def test_apply_lock_conflict_names_holder_and_age(api):
    c = api.client
    lock = c.acquire_lock("radiology/local", "alice@ws1 pid 42")
    err = error(c.acquire_lock, "radiology/local", "bob@ws2 pid 7")
    assert err.status == 409
    assert "alice@ws1 pid 42" in err.detail and " s " in err.detail and lock["lock_id"] in err.detail
    assert err.body["holder"] == "alice@ws1 pid 42" and err.body["age_seconds"] >= 0
    assert error(c.release_lock, "radiology/local", lock_id="wrong").status == 409
    c.release_lock("radiology/local", lock_id=lock["lock_id"])
    assert error(c.get_lock, "radiology/local").status == 404
    again = c.acquire_lock("radiology/local", "bob@ws2 pid 7")
    c.release_lock("radiology/local", force=True)
    assert c.acquire_lock("radiology/local", "carol")["lock_id"] != again["lock_id"]


def test_models_upload_digest_and_validation(api, tmp_path):
    c = api.client
    model = c.put_model("seg", identity_model(tmp_path, "seg"), owner="proj")
    assert model["digest"] == model_digest(tmp_path / "seg") and model["digest"].startswith("sha256:")
    assert (model["versions"], model["config"]["platform"], model["owner"]) == ([1], "onnxruntime_onnx", "proj")
    assert model["state"] == "UNLOADED" and "no inference service" in model["message"]
    assert (api.config.models_dir / "seg" / "1" / "model.onnx").exists()
    assert model_digest(api.config.models_dir / "seg") == model["digest"]
    assert error(c.load_model, "seg").status == 409
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    r = httpx.put(f"{api.config.api_url}/api/v1/models/evil", content=evil.getvalue())
    assert r.status_code == 422 and "leaves the model directory" in r.json()["detail"]
    r = httpx.put(f"{api.config.api_url}/api/v1/models/junk", content=b"not a tarball")
    assert r.status_code == 422 and "tar.gz" in r.json()["detail"]
    bad = identity_model(tmp_path / "b", "other")
    assert error(c.put_model, "seg2", bad).status == 422       # config names another model
    broken = identity_model(tmp_path / "c", "seg3")
    (broken / "1" / "model.onnx").write_bytes(b"not an onnx graph")
    err = error(c.put_model, "seg3", broken)
    assert err.status == 422 and "seg3/1/model.onnx:1:1: not a readable ONNX model" in str(err)
    assert not (api.config.models_dir / "seg3").exists()         # nothing half-installed
    c.delete_model("seg")
    assert c.list_models() == [] and not (api.config.models_dir / "seg").exists()


def test_health_metrics_config_and_openapi(api):
    assert api.client.health_live() == {"status": "live"}
    ready = api.client.health_ready()
    assert ready["http_status"] == 200 and ready["components"]["engine"]["ready"] is True
    assert "# TYPE clara_jobs gauge" in api.client.metrics()
    assert api.client.get_config()["api"]["port"] == api.config.api.port
    spec = httpx.get(f"{api.config.api_url}/api/v1/openapi.json").json()
    assert "/api/v1/jobs/{job_id}/start" in spec["paths"] and "/api/v1/export-tasks/claim" in spec["paths"]


def test_payload_retention_deletes_after_exports_finish(database, start_platform):
    api = start_platform(database, payload_retention=0)
    c = api.client
    c.put_pipeline("seg", NOOP, export=[{"agent": "ClaraSCU", "destinations": ["pacs"]}])
    job = c.create_job("seg")
    c.start_job(job["id"])
    assert c.wait_for_job(job["id"], 30)["status"] == "HEALTHY"
    engine = api.platform.engine
    from claractl.platform.engine.recovery import sweep_payloads
    assert sweep_payloads(engine.store, engine.config) == 0          # export task still pending
    task = c.claim_export_tasks("ClaraSCU")[0]
    c.mark_export_succeeded(task["id"])
    assert sweep_payloads(engine.store, engine.config) == 1
    assert not (api.config.payloads_dir / job["payload_id"]).exists()
    assert error(c.list_payload_files, job["payload_id"]).status == 410
