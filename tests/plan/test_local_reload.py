"""apply restarts only the components whose settings changed (POST /api/v1/config/reload)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from claractl.platform.client import PlatformClient
from claractl.platform.process import read_pid
from tests.plan.integration import free_ports, make_env

WAIT_FOR = Path(__file__).parents[1] / "platform" / "operators" / "wait_for.py"


def long_job(order: Path, release: Path) -> str:
    """A pipeline whose one operator records its start in `order`, then waits for `release`."""
    return yaml.safe_dump({"api-version": "0.4.0", "name": "long", "operators": [{
        "name": "wait", "container": {"image": "claractl/test-wait",
                                      "command": ["python", str(WAIT_FOR), str(order), str(release)]},
        "input": [{"path": "/input"}], "output": [{"path": "/output"}]}]})


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.stop()


def echo(port: int) -> bool:
    """C-ECHO from the project's known source (PACS1 on 127.0.0.1) with dcmtk's echoscu (not pynetdicom's,
    which comes first on PATH)."""
    r = subprocess.run(["/usr/bin/echoscu", "-to", "5", "-aet", "PACS1", "-aec", "HELLO", "127.0.0.1", str(port)],
                       env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, timeout=30)
    return r.returncode == 0


def apply(env, **kw):
    env.write(**kw)
    r = env.cli("apply", "--auto-approve")
    assert r.exit_code == 0, r.output
    return r


def test_dicom_port_change_restarts_only_the_dicom_adapter(env, tmp_path):
    apply(env)
    state = env.root / ".clara"
    pid = read_pid(state)
    old_port = env.ports["dicom_port"]
    assert echo(old_port)

    # A job that runs until released, started before the change.
    order, release = tmp_path / "order", tmp_path / "release"
    client = PlatformClient(f"http://127.0.0.1:{env.ports['api_port']}")
    client.put_pipeline("long", long_job(order, release))
    job = client.create_job("long")
    client.start_job(job["id"])
    deadline = time.time() + 30
    while not order.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert order.exists(), "the job did not start"

    new_port = free_ports(1)[0]
    env.write(dicom_port=new_port)
    r = env.cli("plan", "-o", "json")
    change = next(c for c in json.loads(r.output)["changes"] if c["address"] == "service.dicom-adapter")
    assert change["action"] == "update" and change["reason"] == "restarts: dicom-adapter"
    text = env.cli("plan").output
    assert "service.dicom-adapter (restarts: dicom-adapter)" in text, text

    apply(env, dicom_port=new_port)
    assert read_pid(state) == pid, "the platform process was restarted"
    assert client.get_job(job["id"])["state"] == "RUNNING"
    assert echo(new_port)
    assert not echo(old_port)
    assert env.get("/config")["dicom"]["port"] == new_port
    # The runtime file (what `platform status` reads) follows the reload.
    runtime = json.loads((state / "platform.runtime.json").read_text())
    assert runtime["config"]["dicom"]["port"] == new_port

    release.touch()
    done = client.wait_for_job(job["id"], 30)
    assert done["status"] == "HEALTHY", done
    assert order.read_text().split() == [done["name"]], "the job was run again (interrupted)"
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 0, r.output
    client.close()


def test_api_port_change_restarts_the_process(env):
    apply(env)
    state = env.root / ".clara"
    pid = read_pid(state)
    new_api = free_ports(1)[0]
    env.write(api_port=new_api)
    r = env.cli("plan", "-o", "json")
    change = next(c for c in json.loads(r.output)["changes"] if c["address"] == "service.platform")
    assert change["reason"] == "restarts the platform process (api.port)"

    apply(env, api_port=new_api)
    assert read_pid(state) != pid
    assert httpx.get(f"http://127.0.0.1:{new_api}/health/ready", timeout=5).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{env.ports['api_port']}/health/ready", timeout=5)
    env.ports["api_port"] = new_api
    assert env.cli("plan", "--detailed-exitcode").exit_code == 0


def test_workers_change_reconfigures_the_engine_in_place(env):
    apply(env)
    state = env.root / ".clara"
    pid = read_pid(state)
    apply(env, workers=5)
    assert read_pid(state) == pid
    assert env.get("/config")["api"]["workers"] == 5
    ready = httpx.get(f"http://127.0.0.1:{env.ports['api_port']}/health/ready", timeout=5).json()
    assert ready["components"]["engine"]["slots"] == 5, ready
