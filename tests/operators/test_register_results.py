"""register-results and register-volume-images-for-rendering against a small real HTTP server
that records each request (the platform API's export-task route contract)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from operator_helpers import run_operator


class Recorder(BaseHTTPRequestHandler):
    requests: list
    status = 201

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        status = self.server.status
        reply = {"id": f"task-{len(self.server.requests)}", **body} if status < 300 else {"detail": "job 'j-1' not found"}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests, server.status = [], 201
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def payload(tmp_path):
    root = tmp_path / "payload"
    out = root / "operators" / "dicom-seg-writer"
    out.mkdir(parents=True)
    (out / "seg.dcm").write_bytes(b"x")
    (out / "sub").mkdir()
    (out / "sub" / "extra.dcm").write_bytes(b"y")
    vol = root / "operators" / "dicom-reader"
    vol.mkdir(parents=True)
    (vol / "1.2.3.nii.gz").write_bytes(b"v")
    (vol / "1.2.3.json").write_text("{}")
    return root


def env_for(api, payload, token=None):
    env = {"CLARA_API_URL": f"http://127.0.0.1:{api.server_address[1]}", "NVIDIA_CLARA_JOB_ID": "j-1",
           "NVIDIA_CLARA_PAYLOAD_PATH": str(payload), "CLARA_API_TOKEN": token or ""}
    return env


def test_one_export_task_per_destination(api, payload):
    run_operator("register_results", "--agent", "ClaraSCU", "--data", '["pacs-main", "archive"]',
                 "--input", payload / "operators/dicom-seg-writer", env=env_for(api, payload, token="s3cret"))
    assert [r["path"] for r in api.requests] == ["/api/v1/export-tasks"] * 2
    files = ["operators/dicom-seg-writer/seg.dcm", "operators/dicom-seg-writer/sub/extra.dcm"]
    assert [r["body"] for r in api.requests] == [
        {"job_id": "j-1", "agent": "ClaraSCU", "destination": d, "files": files} for d in ("pacs-main", "archive")]
    assert all(r["auth"] == "Bearer s3cret" for r in api.requests)


def test_renderserver_takes_no_destination(api, payload):
    proc = run_operator("register_results", "--agent", "renderserver", "--input", payload / "operators/dicom-reader",
                        env=env_for(api, payload))
    assert len(api.requests) == 1 and "destination" not in api.requests[0]["body"]
    assert api.requests[0]["auth"] is None and "s3cret" not in proc.stderr


def test_api_refusal_is_a_clear_failure(api, payload):
    api.status = 404
    proc = run_operator("register_results", "--agent", "ClaraSCU", "--data", '["pacs-main"]',
                        "--input", payload / "operators/dicom-seg-writer", env=env_for(api, payload, token="s3cret"), check=False)
    assert proc.returncode == 1
    assert "HTTP 404" in proc.stderr and "job 'j-1' not found" in proc.stderr
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--agent", "ClaraSCU", "--data", "pacs-main"], "is not JSON"),
    (["--agent", "ClaraSCU"], "needs --data"),
    (["--agent", "ClaraSCU", "--data", "[]"], "JSON list of destination names"),
])
def test_bad_arguments(api, payload, args, message):
    proc = run_operator("register_results", *args, "--input", payload / "operators/dicom-seg-writer",
                        env=env_for(api, payload), check=False)
    assert proc.returncode == 1 and message in proc.stderr and not api.requests


def test_unreachable_api_and_missing_environment(tmp_path, payload):
    env = {"CLARA_API_URL": "http://127.0.0.1:9", "NVIDIA_CLARA_JOB_ID": "j-1", "NVIDIA_CLARA_PAYLOAD_PATH": str(payload)}
    proc = run_operator("register_results", "--agent", "renderserver", "--input", payload / "operators/dicom-reader",
                        env=env, check=False)
    assert proc.returncode == 1 and "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    bare = {"CLARA_API_URL": "", "NVIDIA_CLARA_JOB_ID": "", "NVIDIA_CLARA_PAYLOAD_PATH": ""}
    proc = run_operator("register_results", "--agent", "renderserver", "--input", payload, env=bare, check=False)
    assert proc.returncode == 1 and "not running inside a job" in proc.stderr


def test_input_outside_payload_is_refused(api, payload, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "f.dcm").write_bytes(b"z")
    proc = run_operator("register_results", "--agent", "renderserver", "--input", outside,
                        env=env_for(api, payload), check=False)
    assert proc.returncode == 1 and "not inside the job payload" in proc.stderr and not api.requests


def test_register_volume_images_for_rendering(api, payload):
    labels = payload / "operators" / "ai-inference"
    labels.mkdir(parents=True)
    (labels / "1.2.3.nii.gz").write_bytes(b"l")
    run_operator("register_volume_images_for_rendering", "--input", payload / "operators/dicom-reader",
                 "--input", labels, env=env_for(api, payload))
    assert len(api.requests) == 1
    body = api.requests[0]["body"]
    assert body["agent"] == "renderserver" and "destination" not in body
    assert body["files"] == ["operators/ai-inference/1.2.3.nii.gz", "operators/dicom-reader/1.2.3.json",
                             "operators/dicom-reader/1.2.3.nii.gz"]


def test_register_volume_images_needs_volumes(api, payload):
    proc = run_operator("register_volume_images_for_rendering", "--input", payload / "operators/dicom-seg-writer",
                        env=env_for(api, payload), check=False)
    assert proc.returncode == 1 and "no NIfTI volumes" in proc.stderr and not api.requests
