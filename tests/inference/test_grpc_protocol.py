"""tritonclient.grpc against the embedded service."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc as grpclib
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException


def _simple_inputs(a, b):
    inputs = [grpcclient.InferInput("INPUT0", list(a.shape), "INT32"), grpcclient.InferInput("INPUT1", list(b.shape), "INT32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    return inputs


def test_health_and_metadata(grpc):
    assert grpc.is_server_live() and grpc.is_server_ready()
    assert "binary_tensor_data" in grpc.get_server_metadata(as_json=True)["extensions"]
    meta = grpc.get_model_metadata("simple", as_json=True)
    assert meta["name"] == "simple" and meta["versions"] == ["1"]
    assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "INT32", "shape": ["-1", "16"]}  # int64 as JSON strings


def test_model_config_message(grpc):
    config = grpc.get_model_config("conv3d").config
    assert config.name == "conv3d" and list(config.input[0].dims) == [1, 1, 16, 16, 16]
    assert config.output[0].label_filename == "labels.txt"


def test_model_ready(grpc):
    assert grpc.is_model_ready("simple") and grpc.is_model_ready("identity", "1")
    assert not grpc.is_model_ready("nope") and not grpc.is_model_ready("broken")


def test_infer_raw_contents(grpc):
    a = np.arange(48, dtype=np.int32).reshape(3, 16)
    b = np.full((3, 16), 5, np.int32)
    result = grpc.infer("simple", _simple_inputs(a, b), request_id="g1")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    response = result.get_response()
    assert response.id == "g1" and response.model_version == "1" and len(response.raw_output_contents) == 2


def test_infer_typed_contents_without_tritonclient(service):
    """A hand-built request with InferTensorContents (not raw) also works."""
    channel = grpclib.insecure_channel(f"127.0.0.1:{service.grpc_port}")
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = service_pb2.ModelInferRequest(model_name="identity", model_version="1")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend([1.5, 2.5, 3.5, 4.5])
    response = stub.ModelInfer(request)
    assert np.frombuffer(response.raw_output_contents[0], np.float32).tolist() == [1.5, 2.5, 3.5, 4.5]
    channel.close()


def test_infer_conv_volume(grpc, repository):
    import onnxruntime as ort

    x = np.random.default_rng(3).standard_normal((1, 1, 16, 16, 16)).astype(np.float32)
    inp = grpcclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = grpc.infer("conv3d", [inp], outputs=[grpcclient.InferRequestedOutput("OUTPUT__0")]).as_numpy("OUTPUT__0")
    want = ort.InferenceSession(str(repository / "conv3d/1/model.onnx")).run(None, {"INPUT__0": x})[0]
    np.testing.assert_array_equal(got, want)


def _error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_error_codes_match_triton(grpc):
    a = np.ones((1, 16), np.int32)
    e = _error(lambda: grpc.infer("nope", _simple_inputs(a, a)))
    assert e.status() == "StatusCode.NOT_FOUND" and "Request for unknown model: 'nope' is not found" in e.message()
    e = _error(lambda: grpc.infer("broken", _simple_inputs(a, a)))
    assert e.status() == "StatusCode.UNAVAILABLE"
    e = _error(lambda: grpc.infer("identity", [], model_version="9"))
    assert e.status() == "StatusCode.NOT_FOUND" and "version 9" in e.message()
    short = np.ones((1, 4), np.int32)
    e = _error(lambda: grpc.infer("simple", _simple_inputs(short, short)))
    assert e.status() == "StatusCode.INVALID_ARGUMENT" and "unexpected shape for input 'INPUT0'" in e.message()
    f = np.ones((1, 16), np.float64)
    inputs = [grpcclient.InferInput(n, [1, 16], "FP64") for n in ("INPUT0", "INPUT1")]
    for i in inputs:
        i.set_data_from_numpy(f)
    e = _error(lambda: grpc.infer("simple", inputs))
    assert e.status() == "StatusCode.INVALID_ARGUMENT" and "data-type is 'FP64', but model 'simple' expects 'INT32'" in e.message()
    e = _error(lambda: grpc.get_model_metadata("nope"))
    assert e.status() == "StatusCode.NOT_FOUND"


def test_concurrent_requests(service):
    def one(i: int) -> bool:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{service.grpc_port}")
        try:
            a = np.full((2, 16), i, np.int32)
            b = np.arange(32, dtype=np.int32).reshape(2, 16)
            r = client.infer("simple", _simple_inputs(a, b))
            return np.array_equal(r.as_numpy("OUTPUT0"), a + b)
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(40)))
