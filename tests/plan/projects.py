"""Real project directories (clara.yaml + pipeline files + an ONNX model) for loader-based tests."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

PIPELINE = """api-version: 0.6.0
name: {name}
operators:
- name: dicom-reader
  container:
    image: claractl/dicom-reader
    tag: "{tag}"
    command: [python, -m, claractl_operators.dicom_reader, --input, /input, --output, /output]
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  requests: {{cpu: 1, memory: 1024}}
"""

CONFIG = """name: "{name}"
backend: "onnxruntime"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 1, 4 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1, 4 ] }} ]
"""


def write_model(root: Path, name: str, scale: float = 1.0) -> Path:
    """A tiny ONNX model (OUTPUT0 = INPUT0 * scale) in Triton layout; `scale` changes the digest."""
    d = root / "models" / name
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(CONFIG.format(name=name))
    x = helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, [1, 4])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["INPUT0", "k"], ["OUTPUT0"])], name, [x], [y], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, d / "1" / "model.onnx")
    return d


def write_project(root: Path, *, name: str = "plan-test", api_port: int = 18765, clara_port: int = 18051,
                  dicom_port: int = 11190,
                  http_port: int = 18000, grpc_port: int = 18001, render_port: int = 18080,
                  tag: str = "0.1.0", extra: str = "", ae_timeout: float = 5, priority: str = "normal",
                  dest_port: int = 4242, models: tuple[str, ...] = ("tiny",), pipelines: tuple[str, ...] = ("hello",),
                  ae_titles: tuple[str, ...] = ("HELLO",), workers: int = 2, database: str = "sqlite",
                  protect: bool = False, source_host: str = "127.0.0.1", export: bool = False) -> Path:
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    for p in pipelines:
        (root / "pipelines" / f"{p}.yaml").write_text(PIPELINE.format(name=p, tag=tag))
    for m in models:
        if not (root / "models" / m).exists():
            write_model(root, m)
    lifecycle = "\n    lifecycle: {protect: true}" if protect else ""
    exports = "\n    export: [{agent: ClaraSCU, destinations: [pacs-main]}]" if export else ""
    lines = [
        "apiVersion: claractl/v1", "kind: Project", f"name: {name}",
        "target: {type: local, local: {state-dir: .clara}}",
        "services:",
        f"  platform: {{api-port: {api_port}, grpc-port: {clara_port}, workers: {workers}, database: \"{database}\"}}",
        f"  dicom-adapter: {{port: {dicom_port}, ae-title: CLARA}}",
        f"  triton: {{enabled: true, http-port: {http_port}, grpc-port: {grpc_port}}}",
        f"  render: {{enabled: false, port: {render_port}}}",
        "models:" if models else "models: []",
        *[f"  - name: {m}\n    path: models/{m}{lifecycle}" for m in models],
        "pipelines:" if pipelines else "pipelines: []",
        *[f"  - name: {p}\n    file: pipelines/{p}.yaml{lifecycle}{exports}" for p in pipelines],
        "ae-titles:" if ae_titles else "ae-titles: []",
        *[f"  - {{ae-title: {a}, pipelines: [{pipelines[0]}], timeout: {ae_timeout}, priority: {priority}}}"
          for a in ae_titles],
        "sources:",
        f"  - {{name: pacs-main, ae-title: PACS1, host: {source_host}}}",
        "destinations:",
        f"  - {{name: pacs-main, ae-title: PACS1, host: 127.0.0.1, port: {dest_port}}}",
    ]
    path = root / "clara.yaml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path
