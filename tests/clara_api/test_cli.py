"""The CLI a Clara user reaches for: `claractl payloads`, `claractl models`, `jobs create --timeout /
--payload`, and ids shown both ways (claractl's and Clara's) in `jobs describe`."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from claractl.cli.main import app
from tests.clara_api.support import COPY_PIPELINE as COPY
from tests.plan.projects import write_model

SLOW = textwrap.dedent("""\
    api-version: 0.4.0
    name: sleeper
    operators:
    - name: sleep
      container: {image: claractl/sleep, command: [python, -c, "import time; time.sleep(30)"]}
    """)


def cli(clara, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--api", clara.config.api_url], env={"CLARA_API_TOKEN": ""})
    assert result.exit_code == code, result.output
    return result.output


def test_payloads_create_upload_list_download_and_jobs_taking_one(clara, tmp_path):
    clara.rest.put_pipeline("copier", COPY)
    src = tmp_path / "study"
    (src / "series").mkdir(parents=True)
    (src / "series" / "a.dcm").write_bytes(b"A" * 1000)
    (src / "b.dcm").write_bytes(b"B")
    payload_id = cli(clara, "payloads", "create", "--meta", "patient=P1").strip()
    assert "2 file(s), 1001 bytes" in cli(clara, "payloads", "upload", payload_id, str(src))
    listed = json.loads(cli(clara, "payloads", "list", "-o", "json"))
    mine = next(p for p in listed if p["id"] == payload_id)
    assert (mine["type"], mine["metadata"], mine["clara_id"]) == ("reusable", {"patient": "P1"},
                                                                   payload_id.replace("-", ""))
    job = json.loads(cli(clara, "jobs", "create", "copier", "--payload", payload_id, "--timeout", "60",
                         "--wait", "-o", "json"))
    assert (job["status"], job["timeout"], job["input_payloads"]) == ("HEALTHY", 60, [payload_id])
    described = cli(clara, "jobs", "describe", job["clara_id"])                      # Clara's spelling works too
    assert f"{job['id']}  (Clara id {job['clara_id']})" in described and "timeout 60 s" in described
    assert f"input from payload(s) {payload_id}" in described
    cli(clara, "payloads", "download", job["payload_id"], "--dest", str(tmp_path / "out"))
    assert (tmp_path / "out" / "operators/copy/series/a.dcm").read_bytes() == b"A" * 1000
    cli(clara, "payloads", "download", payload_id, "input/b.dcm", "--dest", str(tmp_path / "one"))
    assert (tmp_path / "one" / "input/b.dcm").read_bytes() == b"B"
    assert f"payload {payload_id} deleted" in cli(clara, "payloads", "delete", payload_id)
    assert payload_id not in cli(clara, "payloads", "list")
    assert "was deleted" in cli(clara, "payloads", "download", payload_id, code=1)


def test_jobs_create_timeout_terminates_a_long_job(clara):
    clara.rest.put_pipeline("sleeper", SLOW)
    job = json.loads(cli(clara, "jobs", "create", "sleeper", "--timeout", "1", "--wait", "-o", "json", code=1))
    assert (job["status"], job["message"]) == ("TERMINATED", "job timed out after 1 s")


def test_models_list_show_delete(clara, tmp_path):
    clara.rest.put_model("tiny", write_model(tmp_path, "tiny"))
    listed = json.loads(cli(clara, "models", "list", "-o", "json"))
    assert [(m["name"], m["platform"], m["state"]) for m in listed] == [("tiny", "onnxruntime", "UNLOADED")]
    assert listed[0]["clara_id"] in cli(clara, "models", "list")
    shown = cli(clara, "models", "show", "tiny")
    model = clara.rest.get_model("tiny")
    assert f"Clara id {model['clara_id']}" in shown and model["digest"] in shown
    assert '"backend": "onnxruntime"' in shown
    assert "model tiny deleted" in cli(clara, "models", "delete", "tiny", "--yes")
    assert "model 'tiny' not found" in cli(clara, "models", "show", "tiny", code=1)
