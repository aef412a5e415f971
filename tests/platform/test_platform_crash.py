"""Crash safety: kill -9 of the platform process while a job runs and while a payload uploads;
after a restart queued jobs run, the running job re-runs from its payload, no committed record
or payload file is lost, and no half-written file appears."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil
import pytest

from claractl.platform import process
from claractl.platform.client import ApiError, PlatformClient
from claractl.platform.server import PlatformError
from platform_helpers import alive, make_config, single_op_pipeline


@pytest.fixture
def background(tmp_path):
    """A platform in its own process (as `claractl platform start` runs it)."""
    config = make_config(tmp_path / "state", workers=1)
    config.save()
    state = str(config.root)
    yield config
    process.stop_background(state, timeout=10)


def kill9(state: str) -> None:
    pid = process.read_pid(state)
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
    deadline = time.time() + 10
    while process.is_running(state) and time.time() < deadline:
        time.sleep(0.05)
    assert not process.is_running(state)


def test_kill9_during_a_job_then_restart_reruns_it_and_runs_the_queue(background, tmp_path):
    state = str(background.root)
    status = process.start_background(state, timeout=60)
    assert status["ready"] and not status["already_running"]
    c = PlatformClient(background.api_url)
    order, release = tmp_path / "order", tmp_path / "release"
    c.put_pipeline("gate", single_op_pipeline("gate", "wait_for.py", [str(order), str(release)]))
    payload = c.create_payload()
    c.upload_payload_file(payload["id"], "input/keep.txt", b"patient data")
    running = c.create_job("gate", name="running", payload_id=payload["id"])
    c.start_job(running["id"])
    deadline = time.time() + 30
    while not order.exists() and time.time() < deadline:
        time.sleep(0.05)
    queued = c.create_job("gate", name="queued")
    c.start_job(queued["id"])
    op_pid = c.get_job(running["id"])["operators"][0]
    assert op_pid["state"] == "RUNNING"

    kill9(state)
    leftover = [p.pid for p in psutil.process_iter(["environ"])
                if (p.info["environ"] or {}).get("NVIDIA_CLARA_JOB_ID") == running["id"]]
    assert leftover, "the operator outlives the platform (own session): recovery must deal with it"

    process.start_background(state, timeout=60)
    assert alive(leftover) == [], "recovery kills the crashed run's operator"
    release.touch()
    first = c.wait_for_job(running["id"], 60)
    second = c.wait_for_job(queued["id"], 60)
    assert (first["status"], first["attempts"]) == ("HEALTHY", 2)
    assert (second["status"], second["attempts"]) == ("HEALTHY", 1)
    assert order.read_text().split() == ["running", "running", "queued"]
    assert (background.payloads_dir / payload["id"] / "input/keep.txt").read_bytes() == b"patient data"
    c.close()


def test_kill9_during_an_upload_leaves_no_partial_file(background, tmp_path):
    state = str(background.root)
    process.start_background(state, timeout=60)
    c = PlatformClient(background.api_url)
    payload = c.create_payload()
    c.upload_payload_file(payload["id"], "input/done.bin", b"complete" * 1000)
    payload_dir = background.payloads_dir / payload["id"]
    sent = threading.Event()

    def slow_body():
        for _ in range(200):
            yield b"x" * 65536
            sent.set()
            time.sleep(0.05)

    def upload():
        try:
            httpx.put(f"{background.api_url}/api/v1/payloads/{payload['id']}/files/input/partial.bin",
                      content=slow_body(), timeout=30)
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=upload, daemon=True)
    t.start()
    assert sent.wait(10)
    deadline = time.time() + 10
    while not list(payload_dir.rglob(".upload-*")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(payload_dir.rglob(".upload-*")), "the upload was in progress"
    kill9(state)
    t.join(35)
    assert not (payload_dir / "input/partial.bin").exists()

    process.start_background(state, timeout=60)
    assert list(payload_dir.rglob(".upload-*")) == []
    assert c.list_payload_files(payload["id"]) == [{"path": "input/done.bin", "size": 8000}]
    c.upload_payload_file(payload["id"], "input/partial.bin", b"again")
    assert (payload_dir / "input/partial.bin").read_bytes() == b"again"
    c.close()


def test_second_platform_on_the_same_state_dir_is_refused(background):
    state = str(background.root)
    process.start_background(state, timeout=60)
    again = process.start_background(state, timeout=5)
    assert again["already_running"] is True
    with pytest.raises(PlatformError) as err:
        process.serve(state)
    assert "already running on state dir" in str(err.value) and str(process.read_pid(state)) in str(err.value)
    stopped = process.stop_background(state, timeout=20)
    assert stopped == {"was_running": True, "pid": stopped["pid"], "killed": False}
    assert not process.is_running(state)
    with pytest.raises(ApiError):
        PlatformClient(background.api_url).health_live()


def test_graceful_stop_requeues_the_running_job_without_counting_an_attempt(background, tmp_path):
    state = str(background.root)
    process.start_background(state, timeout=60)
    c = PlatformClient.for_state_dir(state)
    pid_file = tmp_path / "pids"
    c.put_pipeline("sleepy", single_op_pipeline("sleepy", "spawn_and_sleep.py", [str(pid_file)]))
    job = c.create_job("sleepy")
    c.start_job(job["id"])
    deadline = time.time() + 30
    while not (pid_file.exists() and len(pid_file.read_text().split()) >= 3) and time.time() < deadline:
        time.sleep(0.05)
    pids = [int(x) for x in pid_file.read_text().split()]
    assert process.stop_background(state, timeout=30)["killed"] is False
    assert alive(pids) == []
    process.start_background(state, timeout=60)      # the job runs again (and is canceled here)
    again = c.get_job(job["id"])
    assert again["attempts"] == 1 and again["state"] in ("PENDING", "RUNNING")
    assert "re-queued: the platform stopped" in (again["message"] or "") or again["state"] == "RUNNING"
    c.cancel_job(job["id"])
    assert c.wait_for_job(job["id"], 30)["status"] == "CANCELED"
    c.close()
