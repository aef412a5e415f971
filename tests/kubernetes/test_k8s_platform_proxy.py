"""The real platform API, reached "through the API server": the stand-in's service proxy path
with the cluster credential, as the kubernetes target reconciles pipelines, AE titles, …"""

from __future__ import annotations

import pytest

from claractl.platform.api import ApiContext, create_app
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.store import Store
from claractl.targets.kubernetes import Rest, platform_client
from conftest import NAMESPACE, client_for
from tests.ports import served


@pytest.fixture
def platform_api(tmp_path):
    config = PlatformConfig(state_dir=str(tmp_path))
    store = Store(config.database_url)
    store.create_all()
    with served(create_app(ApiContext(config, store, InferenceHook(config)))) as url:
        yield url
    store.dispose()


def test_platform_api_through_the_service_proxy_with_cluster_credentials(standin, platform_api):
    standin.token = "cluster-token"
    standin.register_proxy(NAMESPACE, "clara-platform", "8765", platform_api)
    rest = Rest(client_for(standin.url, "cluster-token"))
    with platform_client(rest, NAMESPACE, 8765) as api:
        assert api.get("/health/live").status_code == 200
        assert api.get("/api/v1/sources").json() == []
        put = api.put("/api/v1/sources/pacs-main", json={"ae_title": "PACS1", "host": "10.0.0.5"})
        assert put.status_code in (200, 201), put.text
        assert [s["name"] for s in api.get("/api/v1/sources").json()] == ["pacs-main"]
        bad = api.put("/api/v1/sources/x", json={"ae_title": "", "host": "h"})
        assert bad.status_code == 422                  # the platform's own error, passed through
    # Without the cluster credential the API server refuses before the platform sees anything.
    with platform_client(Rest(client_for(standin.url, "wrong")), NAMESPACE, 8765) as api:
        assert api.get("/api/v1/sources").status_code == 401
    assert ("GET", "/api/v1/namespaces/clara/services/clara-platform:8765/proxy/api/v1/sources") in standin.requests


def test_platform_token_travels_as_x_clara_token_through_the_proxy(standin, tmp_path):
    """A platform that needs a token for writes (listening beyond loopback) accepts it from the
    proxy, where Authorization carries the cluster credential and is not forwarded."""
    config = PlatformConfig(state_dir=str(tmp_path))
    config.api.host = "0.0.0.0"
    store = Store(config.database_url)
    store.create_all()
    app = create_app(ApiContext(config, store, InferenceHook(config)), token="platform-secret")
    try:
        with served(app) as url:
            standin.token = "cluster-token"
            standin.register_proxy(NAMESPACE, "clara-platform", "8765", url)
            rest = Rest(client_for(standin.url, "cluster-token"))
            body = {"ae_title": "PACS1", "host": "10.0.0.5"}
            with platform_client(rest, NAMESPACE, 8765) as api:
                assert api.put("/api/v1/sources/a", json=body).status_code == 401
            with platform_client(rest, NAMESPACE, 8765, token="wrong") as api:
                assert api.put("/api/v1/sources/a", json=body).status_code == 401
            with platform_client(rest, NAMESPACE, 8765, token="platform-secret") as api:
                assert api.put("/api/v1/sources/a", json=body).status_code in (200, 201)
                assert [s["name"] for s in api.get("/api/v1/sources").json()] == ["a"]
    finally:
        store.dispose()
