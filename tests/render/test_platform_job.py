"""End to end on a real platform process (store, engine, API, render service): a job of the
reference pipeline's shape runs real operators (bundled dicom-reader and
register-volume-images-for-rendering; a threshold stand-in for ai-inference, which needs a model),
and the dashboard follows it in headless Chromium."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform

from .conftest import free_port
from .support import ct_phantom, write_ct_series

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent
PIPELINE = {
    "api-version": "0.6.0",
    "name": "ct-organ-seg",
    "operators": [
        {"name": "dicom-reader",
         "container": {"image": "claractl/dicom-reader", "tag": "0.1.0",
                       "command": ["python", "-m", "claractl_operators.dicom_reader", "--input", "/input", "--output", "/output"]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}]},
        {"name": "ai-inference",
         "container": {"image": "claractl/test-threshold",
                       "command": ["python", str(HERE / "operators" / "threshold_segment.py"), "--input", "/input", "--output", "/output"]},
         "input": [{"from": "dicom-reader", "path": "/input"}], "output": [{"path": "/output"}]},
        {"name": "register-volume-images-for-rendering",
         "container": {"image": "claractl/register-volume-images-for-rendering", "tag": "0.1.0",
                       "command": ["python", "-m", "claractl_operators.register_volume_images_for_rendering",
                                   "--input", "/ct", "--input", "/seg"]},
         "input": [{"from": "dicom-reader", "path": "/ct"}, {"from": "ai-inference", "path": "/seg"}]},
    ],
}


@pytest.fixture
def running(tmp_path, built_ui):
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.api.port, config.render.port = free_port(), free_port()
    config.dicom.enabled = config.inference.enabled = False
    platform = Platform(config)
    platform.start()
    client = PlatformClient(config.api_url, token=platform.token)
    yield config, platform, client
    client.close()
    platform.stop()


def test_reference_job_on_a_real_platform(running, page, tmp_path, artifacts):
    config, platform, client = running
    ui = f"http://127.0.0.1:{config.render.port}"
    client.put_pipeline("ct-organ-seg", yaml.safe_dump(PIPELINE, sort_keys=False))
    series = tmp_path / "series"
    write_ct_series(series, ct_phantom((48, 40, 24))[0], series_uid="1.2.826.0.1.3680043.8.498.77")
    payload = client.create_payload()
    client.upload_input_dir(payload["id"], series)

    page.goto(ui + "/ui/")                     # the render service's own port
    page.wait_for_function("() => document.body.dataset.live === 'live'", timeout=5000)
    job = client.create_job("ct-organ-seg", name="e2e-ct", payload_id=payload["id"])
    client.start_job(job["id"])
    done = client.wait_for_job(job["id"], timeout=120)
    assert (done["state"], done["status"]) == ("STOPPED", "HEALTHY"), done.get("message")
    finished_at = time.monotonic()
    page.wait_for_function(
        f"() => document.querySelector(\"tr[data-job-id='{job['id']}']\")?.dataset.state === 'STOPPED'", timeout=2000)
    assert time.monotonic() - finished_at < 2.0

    page.click(f"tr[data-job-id='{job['id']}'] a")
    page.locator(".timeline .bar").first.wait_for()
    assert page.locator(".timeline .bar").count() == 3
    page.click("button.log-button[data-operator='ai-inference']")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('organ voxels')", timeout=3000)

    # The renderserver agent of the platform publishes what the operator registered.
    deadline = time.monotonic() + 10
    while True:
        tasks = httpx.get(f"{config.api_url}/api/v1/render/jobs/{job['id']}").json()["export_tasks"]
        if tasks and tasks[0]["state"] == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert tasks[0]["agent"] == "renderserver" and tasks[0]["state"] == "SUCCEEDED"
    assert all(f["status"].startswith("indexed") for f in tasks[0]["files"])
    page.wait_for_function("() => document.querySelector('#exports-table')?.textContent.includes('SUCCEEDED')", timeout=2000)
    page.screenshot(path=str(artifacts / "platform-job-page.png"), full_page=True)

    # The same routes are mounted in the API app (API port) as on the render port, SSE included.
    with httpx.stream("GET", f"{config.api_url}/api/v1/render/events", timeout=10) as r:
        lines = r.iter_lines()
        assert [next(lines), next(lines)] == ["retry: 2000", "event: hello"]
    assert httpx.get(f"{config.api_url}/ui/jobs/{job['id']}").status_code == 200
    info = httpx.get(f"{config.api_url}/api/v1/render/jobs/{job['id']}/viewer").json()
    (item,) = info["series"]
    assert item["origin"] == "renderserver"
    assert [s["name"] for s in item["segments"]] == ["organ", "bone"]

    page.click("#open-viewer")
    page.wait_for_function("() => document.body.dataset.viewer === 'ready'", timeout=60000)
    assert page.inner_text("#viewer-status").startswith("48×40×24 voxels")
    page.locator("#viewer-canvas").screenshot(path=str(artifacts / "platform-job-viewer.png"))
