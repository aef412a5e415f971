"""tritonclient.http against the embedded service: the calls an operator makes, unchanged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def _simple_inputs(a, b, binary=True):
    inputs = [httpclient.InferInput("INPUT0", list(a.shape), "INT32"), httpclient.InferInput("INPUT1", list(b.shape), "INT32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary)
    inputs[1].set_data_from_numpy(b, binary_data=binary)
    return inputs


def test_health_and_server_metadata(http):
    assert http.is_server_live() and http.is_server_ready()
    meta = http.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"] and "model_repository" in meta["extensions"]


def test_model_metadata_has_batch_dimension_and_wire_types(http):
    meta = http.get_model_metadata("simple")
    assert meta["name"] == "simple" and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "INT32", "shape": [-1, 16]}
    assert [o["name"] for o in meta["outputs"]] == ["OUTPUT0", "OUTPUT1"]
    assert http.get_model_metadata("identity", "2")["versions"] == ["2"]


def test_model_config_is_tritons_json(http):
    config = http.get_model_config("conv3d")
    assert config["name"] == "conv3d" and config["platform"] == "onnxruntime_onnx"
    assert config["input"][0]["dims"] == [1, 1, 16, 16, 16]          # numbers, not int64 strings
    assert config["output"][0]["label_filename"] == "labels.txt"
    assert config["input"][0]["data_type"] == "TYPE_FP32"


def test_model_ready(http):
    assert http.is_model_ready("simple")
    assert http.is_model_ready("identity", "2")
    assert not http.is_model_ready("identity", "7")
    assert not http.is_model_ready("broken")        # in the repository, never loaded
    assert not http.is_model_ready("nope")


@pytest.mark.parametrize("binary", [True, False])
def test_infer_add_sub(http, binary):
    a = np.arange(32, dtype=np.int32).reshape(2, 16)
    b = np.full((2, 16), 3, dtype=np.int32)
    outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary),
               httpclient.InferRequestedOutput("OUTPUT1", binary_data=binary)]
    result = http.infer("simple", _simple_inputs(a, b, binary), outputs=outputs, request_id="r1")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    response = result.get_response()
    assert response["model_version"] == "1" and response["id"] == "r1"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) is binary


def test_infer_default_outputs_are_binary_and_subset_can_be_requested(http):
    a = np.ones((1, 16), np.int32)
    result = http.infer("simple", _simple_inputs(a, a))
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] == 64
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), np.zeros((1, 16), np.int32))
    only = http.infer("simple", _simple_inputs(a, a), outputs=[httpclient.InferRequestedOutput("OUTPUT0")])
    assert only.as_numpy("OUTPUT1") is None and only.as_numpy("OUTPUT0")[0, 0] == 2


def test_infer_conv_volume_matches_onnxruntime(http, repository):
    import onnxruntime as ort

    x = np.random.default_rng(1).standard_normal((1, 1, 16, 16, 16)).astype(np.float32)
    inp = httpclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = http.infer("conv3d", [inp]).as_numpy("OUTPUT__0")
    want = ort.InferenceSession(str(repository / "conv3d/1/model.onnx")).run(None, {"INPUT__0": x})[0]
    np.testing.assert_array_equal(got, want)


def test_infer_with_compression(http):
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    inp = httpclient.InferInput("x", [3, 4], "FP32")
    inp.set_data_from_numpy(x)
    for algorithm in ("gzip", "deflate"):
        result = http.infer("identity", [inp], request_compression_algorithm=algorithm,
                            response_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("y"), x)


def test_infer_specific_version(http):
    x = np.ones((2, 4), np.float32)
    inp = httpclient.InferInput("x", [2, 4], "FP32")
    inp.set_data_from_numpy(x)
    assert http.infer("identity", [inp], model_version="1").get_response()["model_version"] == "1"
    assert http.infer("identity", [inp]).get_response()["model_version"] == "2"   # latest loaded


def _error(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_unknown_model_is_400_with_tritons_message(http):
    a = np.ones((1, 16), np.int32)
    e = _error(lambda: http.infer("nope", _simple_inputs(a, a)))
    assert e.status() == "400" and "Request for unknown model: 'nope' is not found" in e.message()
    e = _error(lambda: http.get_model_metadata("nope"))
    assert e.status() == "400" and "'nope'" in e.message()
    e = _error(lambda: http.get_model_config("broken"))
    assert "has no available versions" in e.message()


def test_wrong_shape_is_400(http):
    a = np.ones((1, 8), np.int32)
    e = _error(lambda: http.infer("simple", _simple_inputs(a, a)))
    assert e.status() == "400"
    assert "unexpected shape for input 'INPUT0' for model 'simple'. Expected [-1,16], got [1,8]" in e.message()
    big = np.ones((9, 16), np.int32)
    assert "batch-size must be <= 8" in _error(lambda: http.infer("simple", _simple_inputs(big, big))).message()


def test_wrong_dtype_is_400(http):
    a = np.ones((1, 16), np.float32)
    inputs = [httpclient.InferInput(n, [1, 16], "FP32") for n in ("INPUT0", "INPUT1")]
    for i in inputs:
        i.set_data_from_numpy(a)
    e = _error(lambda: http.infer("simple", inputs))
    assert e.status() == "400"
    assert "inference input 'INPUT0' data-type is 'FP32', but model 'simple' expects 'INT32'" in e.message()


def test_missing_input_and_unknown_output_are_400(http):
    a = np.ones((1, 16), np.int32)
    only_one = _simple_inputs(a, a)[:1]
    assert "missing required input(s) ['INPUT1']" in _error(lambda: http.infer("simple", only_one)).message()
    bad_out = [httpclient.InferRequestedOutput("OUTPUT9")]
    assert "unexpected inference output 'OUTPUT9'" in _error(
        lambda: http.infer("simple", _simple_inputs(a, a), outputs=bad_out)).message()


def test_malformed_requests_are_400_json_errors(service):
    base = f"http://127.0.0.1:{service.http_port}/v2/models/simple/infer"
    cases = [
        (b"{not json", {}),
        (b'{"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "parameters": {"binary_data_size": 64}}]}',
         {}),  # binary size but no body
        (b'{"inputs":[]}xx', {"Inference-Header-Content-Length": "13"}),   # trailing bytes
        (b'{"inputs": [{"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": [1, 2]}]}', {}),
    ]
    for body, headers in cases:
        r = httpx.post(base, content=body, headers=headers)
        assert r.status_code == 400, body
        assert isinstance(r.json()["error"], str) and r.json()["error"]


def test_json_tensor_request_by_hand(service):
    """A client without tritonclient: nested JSON data, JSON response."""
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}]}
    r = httpx.post(f"http://127.0.0.1:{service.http_port}/v2/models/identity/versions/1/infer", json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["outputs"][0] == {"name": "y", "datatype": "FP32", "shape": [2, 4], "data": list(range(1, 9))}


def test_concurrent_requests_each_get_their_own_answer(service):
    def one(i: int) -> bool:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{service.http_port}")
        try:
            a = np.full((4, 16), i, np.int32)
            b = np.arange(64, dtype=np.int32).reshape(4, 16)
            r = client.infer("simple", _simple_inputs(a, b))
            return np.array_equal(r.as_numpy("OUTPUT0"), a + b) and np.array_equal(r.as_numpy("OUTPUT1"), a - b)
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(40)))


def test_unimplemented_routes_answer_json_errors(service):
    base = f"http://127.0.0.1:{service.http_port}"
    r = httpx.get(f"{base}/v2/trace/setting")
    assert r.status_code == 404 and "not found" in r.json()["error"]
    r = httpx.get(f"{base}/v2/models/stats")
    assert r.status_code == 400 and "statistics extension is not supported" in r.json()["error"]
    r = httpx.get(f"{base}/v2/models/simple/infer")          # infer is POST only
    assert r.status_code == 405 and r.json()["error"]
