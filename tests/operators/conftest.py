"""Fixtures for the bundled operators: phantom studies on disk, the trained model, the inference
service as its own process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from operator_helpers import MODEL_DIR, MODEL_ONNX, run_operator
from phantom import generate_phantom, write_dicom_series, write_study

from tests.ports import free_port


@pytest.fixture(scope="session")
def small_phantom():
    """A quick phantom (128×128×48 at 3 × 3 × 5 mm): same anatomy, fewer voxels."""
    return generate_phantom(seed=5, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))


@pytest.fixture(scope="session")
def small_series(tmp_path_factory, small_phantom):
    out = tmp_path_factory.mktemp("small-series")
    write_dicom_series(small_phantom, out)
    return out


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory):
    """A held-out phantom (seed 3, not used in training) at the demo grid, written as a study."""
    out = tmp_path_factory.mktemp("demo-study")
    ph = generate_phantom(seed=3)
    info = write_study(ph, out)
    return ph, out, info


@pytest.fixture(scope="session")
def onnx_predict():
    """In-process ONNX Runtime: the same callable shape the Triton client offers."""
    import onnxruntime as ort

    if not MODEL_ONNX.is_file():
        pytest.fail(f"{MODEL_ONNX} missing: run python tools/train_ct_organs.py")
    sess = ort.InferenceSession(str(MODEL_ONNX), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(["OUTPUT__0"], {"INPUT__0": x})[0]


@pytest.fixture(scope="session")
def demo_volumes(tmp_path_factory, demo_study):
    """dicom-reader output for the demo study: <SeriesInstanceUID>.nii.gz + .json."""
    _, study, _ = demo_study
    out = tmp_path_factory.mktemp("demo-volumes")
    run_operator("dicom_reader", "--input", study / "dicom", "--output", out)
    return out



@pytest.fixture(scope="session")
def triton_env(tmp_path_factory):
    """The platform's inference service as its own process, serving the blueprint's model
    repository; yields the operator environment (NVIDIA_TRITON_HTTPURI / GRPCURI)."""
    import time

    import tritonclient.http as httpclient

    http_port, grpc_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("triton") / "service.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "claractl.platform.inference", "--repository", str(MODEL_DIR.parent),
             "--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port),
             "--load-model", "ct-organs"], stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"inference service exited: {log.read_text()}")
            try:
                if httpclient.InferenceServerClient(f"127.0.0.1:{http_port}").is_model_ready("ct-organs"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"inference service not ready in 60 s: {log.read_text()}")
            time.sleep(0.2)
        yield {"NVIDIA_TRITON_HTTPURI": f"127.0.0.1:{http_port}", "NVIDIA_TRITON_GRPCURI": f"127.0.0.1:{grpc_port}",
               "NVIDIA_CLARA_TRTISURI": ""}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
