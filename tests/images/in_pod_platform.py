"""Run inside the platform image by tests/images/test_images.py (as `python -c`): claractl's CLI,
`platform serve` up to /health/live, a model upload (tar extraction on the image's own Python),
and an inference on the embedded service the platform starts. Prints one JSON line."""

import io
import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

STATE = "/var/lib/clara"
API = "http://127.0.0.1:8765"
INFERENCE = "http://127.0.0.1:8000"


def request(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for(url, process, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with {process.returncode} before {url} answered"
        try:
            return request("GET", url)[0]
        except OSError:
            time.sleep(0.3)
    return f"no answer from {url} in {seconds} s"


def identity_model_tar(name):
    from onnx import TensorProto, helper, save_model

    shape = [None, 4]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    onnx_bytes = io.BytesIO()
    save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), onnx_bytes)
    config = (f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
              'input [{ name: "x" data_type: TYPE_FP32 dims: [-1, 4] }]\n'
              'output [{ name: "y" data_type: TYPE_FP32 dims: [-1, 4] }]\n').encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in [(f"{name}/config.pbtxt", config), (f"{name}/1/model.onnx", onnx_bytes.getvalue())]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


out = {"python": sys.version.split()[0], "executable": os.path.realpath(sys.executable),
       "base_prefix": sys.base_prefix, "uid": os.getuid()}
version = subprocess.run(["claractl", "version"], capture_output=True, text=True)
out["claractl_version"] = (version.returncode, version.stdout.strip() + version.stderr.strip())
serve = subprocess.Popen(["claractl", "platform", "serve", "--state-dir", STATE],
                         stdout=subprocess.DEVNULL, stderr=open("/tmp/serve.log", "w"))
try:
    out["live"] = wait_for(f"{API}/health/live", serve)
    out["upload"] = request("PUT", f"{API}/api/v1/models/ident", identity_model_tar("ident"))
    if out["upload"][0] in (200, 201):
        out["model_ready"] = wait_for(f"{INFERENCE}/v2/models/ident/ready", serve)
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.5, 2, 3, 4]}]}
        status, answer = request("POST", f"{INFERENCE}/v2/models/ident/infer", json.dumps(body).encode())
        out["inference"] = (status, answer["outputs"][0]["data"] if status == 200 else answer)
finally:
    serve.terminate()
    out["serve_exit"] = serve.wait(30)
    out["serve_log_tail"] = open("/tmp/serve.log").read()[-1500:]
print(json.dumps(out))
