"""Helpers for the platform tests (importable as `platform_helpers`: pytest puts this folder on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import onnx
import yaml
from onnx import TensorProto, helper

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform
from tests.ports import free_port

OPERATORS = Path(__file__).parent / "operators"


def make_config(state_dir: Path, database: str = "sqlite", **engine) -> PlatformConfig:
    config = PlatformConfig(state_dir=str(state_dir))
    config.api.port = free_port()
    config.store.database = database
    config.dicom.enabled = False
    config.inference.enabled = False
    config.render.enabled = False
    for key, value in engine.items():
        if key == "workers":
            config.api.workers = value
        else:
            setattr(config.engine, key, value)
    return config


class RunningPlatform:
    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.platform = Platform(config)
        self.platform.start()
        self.client = PlatformClient(config.api_url, token=self.platform.token)

    def stop(self) -> None:
        self.client.close()
        self.platform.stop()


def op(name: str, script: str, args: list[str], inputs=(), outputs=(), **extra) -> dict:
    """A PDL operator that runs a test script with the platform's Python (bundled-style image)."""
    entry = {
        "name": name,
        "container": {"image": f"claractl/test-{name}", "command": ["python", str(OPERATORS / script), *args]},
        "input": list(inputs),
        "output": list(outputs),
    }
    entry.update(extra)
    return entry


def pdl(name: str, operators: list[dict], parameters: dict | None = None) -> str:
    doc = {"api-version": "0.4.0", "name": name, "operators": operators}
    if parameters:
        doc["parameters"] = parameters
    return yaml.safe_dump(doc, sort_keys=False)


def single_op_pipeline(name: str, script: str, args: list[str], **extra) -> str:
    return pdl(name, [op("main", script, args, inputs=[{"path": "/input"}], outputs=[{"path": "/output"}], **extra)])


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


PYTHON = sys.executable


def identity_model(root: Path, name: str) -> Path:
    shape = [None, 4]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    (root / name / "1").mkdir(parents=True)
    onnx.save(model, str(root / name / "1" / "model.onnx"))
    (root / name / "config.pbtxt").write_text(
        f'name: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
        'input [{ name: "x" data_type: TYPE_FP32 dims: [-1, 4] }]\n'
        'output [{ name: "y" data_type: TYPE_FP32 dims: [-1, 4] }]\n')
    return root / name
