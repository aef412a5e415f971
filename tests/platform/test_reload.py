"""POST /api/v1/config/reload on a real platform (in-process, API over HTTP)."""

from __future__ import annotations

import socket

import httpx
import pytest

from claractl.platform.client import ApiError, PlatformClient
from platform_helpers import RunningPlatform, free_port, make_config


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def dicom_platform(tmp_path):
    config = make_config(tmp_path / "state")
    config.dicom.enabled = True
    config.dicom.host = "127.0.0.1"
    config.dicom.port = free_port()
    config.save()
    running = RunningPlatform(config)
    yield running
    running.stop()


def test_no_change_restarts_nothing(dicom_platform):
    out = dicom_platform.client.reload_config()
    assert out["changed"] == [] and out["restarted"] == [] and out["restart_required"] is False


def test_dicom_change_restarts_only_the_adapter(dicom_platform):
    p = dicom_platform
    engine, old_port = p.platform.engine, p.config.dicom.port
    old_adapter = p.platform.components["dicom"]
    new = make_config(p.config.root)
    new.api.port, new.dicom.enabled, new.dicom.host = p.config.api.port, True, "127.0.0.1"
    new.dicom.port = free_port()
    new.save()
    out = p.client.reload_config()
    assert out["restarted"] == ["dicom-adapter"] and out["changed"] == ["dicom.port"], out
    assert p.platform.components["dicom"] is not old_adapter
    assert p.platform.components["engine"] is engine          # the engine was not restarted
    assert listening(new.dicom.port) and not listening(old_port)
    assert p.client.get_config()["dicom"]["port"] == new.dicom.port
    assert p.client._json("GET", "/api/v1/dicom/status")["port"] == new.dicom.port


def test_api_port_change_applies_nothing_and_says_restart(dicom_platform):
    p = dicom_platform
    new = make_config(p.config.root)
    new.dicom.enabled, new.dicom.host, new.dicom.port = True, "127.0.0.1", free_port()
    new.save()                               # new api.port (make_config picks a free one) and dicom.port
    out = p.client.reload_config()
    assert out["restart_required"] is True and out["restart_required_for"] == ["api.port"]
    assert out["restarted"] == []
    assert p.client.get_config()["dicom"]["port"] == p.config.dicom.port
    assert listening(p.config.dicom.port)


def test_component_failing_to_start_keeps_previous_settings(dicom_platform):
    p = dicom_platform
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        new = make_config(p.config.root)
        new.api.port, new.dicom.enabled, new.dicom.host = p.config.api.port, True, "127.0.0.1"
        new.dicom.port = taken.getsockname()[1]
        new.save()
        with pytest.raises(ApiError) as err:
            p.client.reload_config()
    assert err.value.status == 409
    assert "component dicom failed to start" in err.value.detail and "kept the previous settings" in err.value.detail
    assert listening(p.config.dicom.port)
    assert p.client.get_config()["dicom"]["port"] == p.config.dicom.port
    assert p.client.health_ready()["http_status"] == 200


def test_reload_needs_the_token_beyond_loopback(tmp_path):
    config = make_config(tmp_path / "state")
    config.api.host = "0.0.0.0"
    config.api.token = "s3cret-token"
    config.save()
    running = RunningPlatform(config)
    try:
        url = f"http://127.0.0.1:{config.api.port}/api/v1/config/reload"
        assert httpx.post(url, timeout=10).status_code == 401
        with PlatformClient(f"http://127.0.0.1:{config.api.port}", token="s3cret-token") as client:
            assert client.reload_config()["restart_required"] is False
    finally:
        running.stop()
