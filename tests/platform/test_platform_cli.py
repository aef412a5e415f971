"""`claractl jobs|pipelines|platform` against a running platform (through its API)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from claractl.cli.main import app
from platform_helpers import single_op_pipeline

runner = CliRunner(env={"COLUMNS": "200"})   # a wide terminal: full ids in tables


def run(*args: str):
    return runner.invoke(app, ["--no-color", *args])


def test_jobs_and_pipelines_commands(start_platform, tmp_path):
    p = start_platform()
    api = ["--api", p.config.api_url]
    p.client.put_pipeline("up", single_op_pipeline("up", "upper.py", ["/input", "/output"]), owner="demo")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text("abc\n")

    created = run("jobs", "create", "up", "-i", str(inputs), "--name", "cli-job", "--wait", "-o", "json", *api)
    assert created.exit_code == 0, created.output
    job = json.loads(created.output)
    assert (job["name"], job["status"]) == ("cli-job", "HEALTHY")

    listed = run("jobs", "list", *api)
    assert listed.exit_code == 0 and job["id"] in listed.output and "HEALTHY" in listed.output
    assert [j["id"] for j in json.loads(run("jobs", "list", "--state", "stopped", "-o", "json", *api).output)] == [job["id"]]

    described = run("jobs", "describe", job["id"], *api)
    assert described.exit_code == 0 and "main" in described.output and "HEALTHY" in described.output
    assert "upper: 1 file(s)" in run("jobs", "logs", job["id"], *api).output

    downloaded = run("jobs", "download", job["id"], "--dest", str(tmp_path / "dl"), *api)
    assert downloaded.exit_code == 0, downloaded.output
    assert (tmp_path / "dl" / job["id"] / "operators/main/a.txt").read_text() == "ABC\n"
    assert not (tmp_path / "dl" / job["id"] / "input").exists()

    pipelines = run("pipelines", "list", *api)
    assert "up" in pipelines.output and "demo" in pipelines.output
    assert json.loads(run("pipelines", "describe", "up", "-o", "json", *api).output)["owner"] == "demo"

    missing = run("jobs", "describe", "no-such-job", *api)
    assert missing.exit_code == 1 and "job 'no-such-job' not found" in missing.output
    bad_var = run("jobs", "create", "up", "--var", "nope", *api)
    assert bad_var.exit_code == 2 and "NAME=VALUE" in bad_var.output

    queued = run("jobs", "create", "up", "--no-start", "-o", "json", *api)
    canceled = run("jobs", "cancel", json.loads(queued.output)["id"], *api)
    assert canceled.exit_code == 0 and "canceled" in canceled.output


def test_platform_status_of_a_stopped_state_dir_and_unreachable_api(tmp_path):
    st = run("platform", "status", "--state-dir", str(tmp_path / "none"), "-o", "json")
    assert st.exit_code == 1 and json.loads(st.output)["running"] is False
    down = run("jobs", "list", "--api", "http://127.0.0.1:9")
    assert down.exit_code == 1 and "is not reachable" in down.output
