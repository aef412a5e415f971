"""Fuzz the API with schemathesis against its own OpenAPI document: no input gives a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from claractl.platform.api import ApiContext, create_app
from claractl.platform.engine import Engine
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.store import Store
from platform_helpers import make_config, single_op_pipeline


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    config = make_config(tmp_path_factory.mktemp("fuzz") / "state")
    store = Store(config.database_url)
    store.create_all()
    engine = Engine(config, store)
    engine.start()
    app = create_app(ApiContext(config, store, InferenceHook(config), engine, {"engine": engine}))
    from fastapi.testclient import TestClient
    with TestClient(app) as client:     # some real objects, so ids and names sometimes exist
        client.put("/api/v1/pipelines/noop", json={"definition_text": single_op_pipeline("noop", "noop.py", [])})
    yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    engine.stop()
    store.dispose()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("detail"), str), body
