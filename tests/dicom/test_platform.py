"""The adapter inside the real platform process: status route, receive → job visible through the API."""

from __future__ import annotations

import httpx
import pytest

from claractl.platform.config import PlatformConfig
from tests.dicom.conftest import CALLED_AE, dcmtk, free_port, seed, wait_for


@pytest.fixture
def running_platform(tmp_path):
    from claractl.platform.server import Platform
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.dicom.port, config.dicom.host = free_port(), "127.0.0.1"
    config.api.port = free_port()
    config.inference.enabled = config.render.enabled = False
    config.dicom.watermark_percent = 99.9
    config.root.mkdir(parents=True)
    p = Platform(config)
    p.start()
    seed(p.store)
    yield config
    p.stop()


def test_status_route_and_job_through_api(running_platform, ct5):
    config = running_platform
    api = config.api_url + "/api/v1"
    doc = httpx.get(api + "/dicom/status").json()
    assert doc["running"] and doc["port"] == config.dicom.port and doc["export"]["running"]
    proc = dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(config.dicom.port), *map(str, ct5))
    assert proc.returncode == 0, proc.stderr
    items = wait_for(lambda: httpx.get(api + "/jobs").json() or None)
    assert len(items) == 1 and items[0]["pipeline"] == "ct-seg" and items[0]["priority"] == "higher"
    assert items[0]["started"]
    assert httpx.get(api + "/dicom/status").json()["instances_received"] == 5
