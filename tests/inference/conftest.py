from __future__ import annotations

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from claractl.platform.config import InferenceSettings, PlatformConfig
from claractl.platform.inference import InferenceService
from .onnx_models import build_repository


@pytest.fixture(scope="session")
def repository(tmp_path_factory):
    return build_repository(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def service(repository, tmp_path_factory):
    config = PlatformConfig(state_dir=str(tmp_path_factory.mktemp("state")))
    config.inference = InferenceSettings(host="127.0.0.1", http_port=0, grpc_port=0)
    svc = InferenceService(config, store=None, repository=repository)
    svc.start()
    for name in ("simple", "identity", "conv3d"):
        svc.load_model(name)
    yield svc
    svc.stop()


@pytest.fixture()
def http(service):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{service.http_port}", concurrency=4)
    yield client
    client.close()


@pytest.fixture()
def grpc(service):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{service.grpc_port}")
    yield client
    client.close()
