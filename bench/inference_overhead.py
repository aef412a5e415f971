"""Inference overhead: direct ONNX Runtime in-process vs. through the embedded Triton-protocol
service (HTTP binary, gRPC), same volume, same model, one run. Target: service ≤ 1.10× direct.

    python bench/inference_overhead.py [--iterations 20] [--model DIR]

The model is blueprints/ct-segmentation/models/ct-organs when its 1/model.onnx exists, else a
small 3D conv net built here with onnx.helper (1×1×64³ FP32 → 1×4×64³ logits, ct-organs' contract).
Also a tiny single-conv model, to show the fixed per-request cost of the protocol.
The service runs as its own process (`python -m claractl.platform.inference`), as operators see it.
Ratios are against ONNX Runtime's defaults in-process (what an operator would do); the column
"direct no-spin" runs the model with the session setting the service uses, to tell the effect of
that setting from the cost of the protocol.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper, numpy_helper
from common import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "blueprints/ct-segmentation/models/ct-organs"
CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 1, 1, 64, 64, 64 ] }} ]
output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 1, 4, 64, 64, 64 ] }} ]
"""


def conv_net(path: Path, channels: list[int]) -> None:
    """Conv3d(3×3×3) layers with ReLU between them: channels [1, …, 4]."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "INPUT__0"
    for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
        w = numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3, 3)) * 0.1).astype(np.float32), f"w{i}")
        b = numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")
        inits += [w, b]
        last = i == len(channels) - 2
        out = "OUTPUT__0" if last else f"c{i}"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [out], pads=[1] * 6))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info("INPUT__0", TensorProto.FLOAT, [1, 1, 64, 64, 64])],
        [helper.make_tensor_value_info("OUTPUT__0", TensorProto.FLOAT, [1, 4, 64, 64, 64])], initializer=inits)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def timed_interleaved(fns: dict, iterations: int) -> dict[str, list[float]]:
    """Round-robin the ways each iteration, so load from other processes hits all of them alike."""
    for fn in fns.values():
        for _ in range(3):
            fn()                                          # warm-up: allocator, caches, connections
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(iterations):
        names = list(fns)
        names = names[i % len(names):] + names[:i % len(names)]
        for name in names:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def wait_ready(http_url: str, timeout: float = 30.0) -> None:
    client = httpclient.InferenceServerClient(http_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.is_server_ready():
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.1)
    raise SystemExit("inference service did not become ready")


def via_http(client, name: str, x: np.ndarray) -> np.ndarray:
    inp = httpclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    return client.infer(name, [inp]).as_numpy("OUTPUT__0")


def via_grpc(client, name: str, x: np.ndarray) -> np.ndarray:
    inp = grpcclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer(name, [inp]).as_numpy("OUTPUT__0")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()

    repo = Path(tempfile.mkdtemp(prefix="bench-models-"))
    models = {}
    if (REFERENCE / "1" / "model.onnx").exists():
        shutil.copytree(REFERENCE, repo / "ct-organs")
        models["ct-organs (blueprint)"] = "ct-organs"
    else:
        (repo / "convnet").mkdir()
        (repo / "convnet" / "config.pbtxt").write_text(CONFIG.format(name="convnet"))
        conv_net(repo / "convnet" / "1" / "model.onnx", [1, 8, 8, 4])
        models["convnet 1→8→8→4 (3×3×3)"] = "convnet"
    (repo / "tinyconv").mkdir()
    (repo / "tinyconv" / "config.pbtxt").write_text(CONFIG.format(name="tinyconv"))
    conv_net(repo / "tinyconv" / "1" / "model.onnx", [1, 4])
    models["tinyconv 1→4 (one conv)"] = "tinyconv"

    http_port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claractl.platform.inference", "--repository", str(repo), "--host", "127.0.0.1",
         "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--load-model", "*"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"127.0.0.1:{http_port}")
        http = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}")
        grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        x = np.random.default_rng(0).uniform(-1, 1, (1, 1, 64, 64, 64)).astype(np.float32)
        print(f"volume 1×1×64×64×64 FP32 ({x.nbytes / 2**20:.0f} MiB in, 4 MiB out); {args.iterations} timed runs "
              f"each, interleaved, after 3 warm-ups; median (mean) ms; load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        print(f"{'model':30} {'direct ORT':>14} {'direct no-spin':>14} {'HTTP binary':>14} {'gRPC':>14} "
              f"{'HTTP ×':>7} {'gRPC ×':>7}")
        for label, name in models.items():
            while not http.is_model_ready(name):
                time.sleep(0.1)
            session = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
            quiet_options = ort.SessionOptions()           # as the service runs it: idle threads do not spin
            quiet_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            quiet = ort.InferenceSession(str(repo / name / "1" / "model.onnx"), quiet_options,
                                         providers=["CPUExecutionProvider"])
            fns = {"direct": lambda: session.run(None, {"INPUT__0": x}),
                   "direct_nospin": lambda: quiet.run(None, {"INPUT__0": x}),
                   "http": lambda: via_http(http, name, x), "grpc": lambda: via_grpc(grpc, name, x)}
            assert fns["http"]().shape == fns["grpc"]().shape == (1, 4, 64, 64, 64)
            np.testing.assert_allclose(fns["http"](), fns["direct"]()[0], rtol=1e-5, atol=1e-5)
            t = timed_interleaved(fns, args.iterations)
            session = quiet = None                        # only the service holds a session now
            md, mq, mh, mg = (statistics.median(t[k]) * 1000 for k in ("direct", "direct_nospin", "http", "grpc"))
            fmt = lambda v: f"{statistics.median(v) * 1000:6.1f} ({statistics.mean(v) * 1000:5.1f})"  # noqa: E731
            print(f"{label:30} {fmt(t['direct']):>14} {fmt(t['direct_nospin']):>14} {fmt(t['http']):>14} "
                  f"{fmt(t['grpc']):>14} {mh / md:6.2f}× {mg / md:6.2f}×")
            print(f"{'  vs direct no-spin':30} {'':>14} {'':>14} {f'{mh - mq:+.1f} ms':>14} {f'{mg - mq:+.1f} ms':>14} "
                  f"{mh / mq:6.2f}× {mg / mq:6.2f}×")
        http.close()
        grpc.close()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
