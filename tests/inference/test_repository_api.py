"""Explicit model control through Triton's repository API (HTTP and gRPC), and the component."""

from __future__ import annotations

import json

import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from claractl.platform.config import InferenceSettings, PlatformConfig
from claractl.platform.inference import InferenceError, InferenceService, InferenceServiceError
from .onnx_models import build_repository, identity


@pytest.fixture()
def fresh(tmp_path):
    """A service of its own (load/unload changes state), nothing loaded."""
    repo = build_repository(tmp_path / "models")
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.inference = InferenceSettings(host="127.0.0.1", http_port=0, grpc_port=0)
    svc = InferenceService(config, repository=repo)
    svc.start()
    yield svc
    svc.stop()


def _index(client):
    return {(row["name"], row.get("version", "")): row["state"] for row in client.get_model_repository_index()}


def test_nothing_loads_until_asked_then_http_load_unload(fresh):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{fresh.http_port}")
    index = _index(client)
    assert index[("simple", "")] == "UNAVAILABLE" and not client.is_model_ready("simple")
    client.load_model("simple")
    assert client.is_model_ready("simple") and _index(client)[("simple", "1")] == "READY"
    client.unload_model("simple")
    assert not client.is_model_ready("simple") and _index(client)[("simple", "")] == "UNAVAILABLE"
    client.close()


def test_grpc_load_unload_and_ready_only_index(fresh):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{fresh.grpc_port}")
    client.load_model("identity")
    ready = client.get_model_repository_index(as_json=True)["models"]
    assert {(m["name"], m["version"]) for m in ready if m.get("state") == "READY"} == {("identity", "1"), ("identity", "2")}
    only_ready = service_index_ready(client)
    assert {m.name for m in only_ready} == {"identity"}
    client.unload_model("identity")
    assert not client.is_model_ready("identity")
    client.close()


def service_index_ready(client):
    from tritonclient.grpc import service_pb2
    return client._client_stub.RepositoryIndex(service_pb2.RepositoryIndexRequest(ready=True)).models


def test_load_failure_is_reported_with_the_config_problem(fresh):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{fresh.http_port}")
    with pytest.raises(InferenceServerException) as info:
        client.load_model("broken")
    assert info.value.status() == "400"
    assert "config.pbtxt:6:20: input[0].data_type" in info.value.message()
    row = [r for r in client.get_model_repository_index() if r["name"] == "broken"][0]
    assert row["state"] == "UNAVAILABLE" and "TYPE_INT32" in row["reason"]
    with pytest.raises(InferenceServerException) as info:
        client.load_model("not-there")
    assert "no model directory 'not-there'" in info.value.message()
    with pytest.raises(InferenceServerException):
        client.load_model("..")
    with pytest.raises(InferenceServerException, match="not found in the repository"):
        client.unload_model("..")
    client.close()


def test_load_with_config_override(fresh):
    """Triton's load request may carry the config as JSON; it replaces config.pbtxt for that load."""
    client = httpclient.InferenceServerClient(f"127.0.0.1:{fresh.http_port}")
    override = {"name": "identity", "backend": "onnxruntime", "version_policy": {"specific": {"versions": [1]}},
                "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1, 4]}],
                "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [-1, 4]}]}
    client.load_model("identity", config=json.dumps(override))
    assert client.get_model_metadata("identity")["versions"] == ["1"]
    client.close()


def test_reload_picks_up_a_new_version(fresh):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{fresh.http_port}")
    client.load_model("identity")
    assert client.get_model_metadata("identity")["versions"] == ["1", "2"]
    identity(fresh.repository / "identity" / "3" / "model.onnx")
    client.load_model("identity")
    assert client.get_model_metadata("identity")["versions"] == ["1", "2", "3"]
    client.close()


def test_failed_reload_keeps_the_loaded_model_serving(fresh):
    fresh.load_model("identity")
    config = fresh.repository / "identity" / "config.pbtxt"
    config.write_text(config.read_text().replace("TYPE_FP32", "TYPE_INT8"))
    with pytest.raises(InferenceError, match="TYPE_INT8"):
        fresh.load_model("identity")
    assert fresh.is_model_ready("identity")


def test_component_load_unload_status(fresh):
    fresh.load_model("conv3d")
    assert fresh.is_model_ready("conv3d")
    status = fresh.status()
    assert status["state"] == "running" and status["models"]["conv3d"] == "READY"
    assert status["http"].endswith(f":{fresh.http_port}")
    fresh.unload_model("conv3d")
    assert fresh.status()["models"]["conv3d"] == "UNAVAILABLE"
    with pytest.raises(InferenceError):
        fresh.load_model("broken")


def test_store_tracks_model_state_and_reloads_after_restart(tmp_path):
    from claractl.platform.store import Store
    from claractl.platform.store.models import Model

    repo = build_repository(tmp_path / "models")
    store = Store(f"sqlite:///{tmp_path / 'clara.db'}")
    store.create_all()
    with store.session() as s:
        s.add(Model(name="simple", digest="sha256:x", config={}, versions=[]))
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.inference = InferenceSettings(host="127.0.0.1", http_port=0, grpc_port=0)
    svc = InferenceService(config, store, repository=repo)
    svc.start()
    svc.load_model("simple")
    svc.stop()
    with store.session() as s:
        row = s.get(Model, "simple")
        assert (row.state, row.versions) == ("LOADED", [1])
    again = InferenceService(config, store, repository=repo)
    again.start()
    try:
        assert again.is_model_ready("simple")       # restored from the store
    finally:
        again.stop()
    store.dispose()


def test_port_in_use_is_a_clear_error(fresh, tmp_path):
    config = PlatformConfig(state_dir=str(tmp_path / "other"))
    config.inference = InferenceSettings(host="127.0.0.1", http_port=fresh.http_port, grpc_port=0)
    other = InferenceService(config, repository=fresh.repository)
    with pytest.raises(InferenceServiceError, match=f"127.0.0.1:{fresh.http_port}"):
        other.start()
    assert other.status()["state"] == "stopped"
    config.inference = InferenceSettings(host="127.0.0.1", http_port=0, grpc_port=fresh.grpc_port)
    with pytest.raises(InferenceServiceError, match=f"gRPC server could not listen on 127.0.0.1:{fresh.grpc_port}"):
        InferenceService(config, repository=fresh.repository).start()
    assert fresh.status()["state"] == "running"            # the first service is untouched


def test_inference_keeps_answering_while_the_model_reloads(fresh):
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    fresh.load_model("identity")
    stop = False

    def infer_until_stopped() -> int:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{fresh.http_port}")
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        count = 0
        while not stop or count == 0:
            inp = httpclient.InferInput("x", [2, 4], "FP32")
            inp.set_data_from_numpy(x)
            assert np.array_equal(client.infer("identity", [inp]).as_numpy("y"), x)
            count += 1
        client.close()
        return count

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(infer_until_stopped) for _ in range(3)]
        for _ in range(5):
            fresh.load_model("identity")          # reload: sessions swapped under running requests
        stop = True
        assert all(f.result(timeout=30) > 0 for f in futures)
