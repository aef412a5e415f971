"""Small ONNX graphs built with onnx.helper, and Triton model directories around them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET, ir_version=8)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def add_sub(path: Path, dtype=TensorProto.INT32, dims=("batch", 16)) -> Path:
    """Triton's 'simple' example: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1."""
    io = lambda n: helper.make_tensor_value_info(n, dtype, list(dims))  # noqa: E731
    graph = helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
         helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"])],
        "simple", [io("INPUT0"), io("INPUT1")], [io("OUTPUT0"), io("OUTPUT1")])
    return _save(graph, path)


def identity(path: Path, dtype=TensorProto.FLOAT, dims=(-1, 4)) -> Path:
    shape = [d if d != -1 else None for d in dims]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", dtype, shape)], [helper.make_tensor_value_info("y", dtype, shape)])
    return _save(graph, path)


def conv3d(path: Path, size: int = 16, classes: int = 2, seed: int = 0) -> Path:
    """1×1×S³ FP32 → 1×C×S³ logits: one 3×3×3 convolution with fixed random weights."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((classes, 1, 3, 3, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["INPUT__0", "W", "B"], ["OUTPUT__0"], pads=[1] * 6)], "conv3d",
        [helper.make_tensor_value_info("INPUT__0", TensorProto.FLOAT, [1, 1, size, size, size])],
        [helper.make_tensor_value_info("OUTPUT__0", TensorProto.FLOAT, [1, classes, size, size, size])],
        initializer=[weight, bias])
    return _save(graph, path)


SIMPLE_CONFIG = """
name: "simple"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ] },
  { name: "OUTPUT1" data_type: TYPE_INT32 dims: [ 16 ] }
]
"""

IDENTITY_CONFIG = """
name: "identity"
backend: "onnxruntime"
max_batch_size: 0
version_policy: { all: {} }
input { name: "x" data_type: TYPE_FP32 dims: [ -1, 4 ] }
output { name: "y" data_type: TYPE_FP32 dims: [ -1, 4 ] }
"""

CONV_CONFIG = """
name: "conv3d"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 1, 1, 16, 16, 16 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 1, 2, 16, 16, 16 ] label_filename: "labels.txt" } ]
"""


def write_model(repo: Path, name: str, config: str, builders: dict[int, callable], extra: dict[str, str] | None = None) -> Path:
    model_dir = repo / name
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(config)
    for version, build in builders.items():
        build(model_dir / str(version) / "model.onnx")
    for rel, text in (extra or {}).items():
        (model_dir / rel).write_text(text)
    return model_dir


def build_repository(repo: Path) -> Path:
    write_model(repo, "simple", SIMPLE_CONFIG, {1: add_sub})
    write_model(repo, "identity", IDENTITY_CONFIG, {1: identity, 2: identity})
    write_model(repo, "conv3d", CONV_CONFIG, {1: conv3d}, {"labels.txt": "background\norgan\n"})
    # In the repository but with a config that contradicts its graph: loading it must fail cleanly.
    write_model(repo, "broken", SIMPLE_CONFIG.replace('"simple"', '"broken"').replace("TYPE_INT32", "TYPE_FP32"),
                {1: add_sub})
    return repo
