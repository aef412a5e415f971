"""Fixtures for the project model: a small valid project written to a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

# Line numbers matter: the malformed cases in test_malformed.py point into these texts.
BASE_PROJECT = """\
apiVersion: claractl/v1
kind: Project
name: test
models:
  - name: m
    path: models/m
pipelines:
  - name: p
    file: pipelines/p.yaml
ae-titles:
  - ae-title: TEST
    pipelines: [p]
sources:
  - {name: src, ae-title: SRC, host: 127.0.0.1}
destinations:
  - {name: pacs, ae-title: PACS, host: 127.0.0.1, port: 4242}
"""

BASE_PIPELINE = """\
api-version: 0.6.0
name: p
operators:
- name: reader
  container: {image: claractl/dicom-reader, command: [python, -m, x]}
  input: [{path: /input}]
  output: [{path: /output}]
- name: infer
  container: {image: claractl/ai-inference}
  input: [{from: reader, path: /input}]
  output: [{path: /output}]
  models: [{name: m}]
"""


# A Triton model directory validate accepts: config.pbtxt for ONNX Runtime + a version folder.
# (validate does not open the model file; the platform checks it against the config on upload.)
MODEL_CONFIG = """\
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 1, 4 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1, 4 ] }} ]
"""


def write_model_dir(directory: Path, config: str | None = None) -> Path:
    (directory / "1").mkdir(parents=True, exist_ok=True)
    (directory / "config.pbtxt").write_text(MODEL_CONFIG.format(name=directory.name) if config is None else config)
    (directory / "1" / "model.onnx").write_bytes(b"onnx")
    return directory


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a project (base texts unless given) and return the path of its clara.yaml."""

    def make(project: str | bytes = BASE_PROJECT, pipeline: str | bytes | None = BASE_PIPELINE,
             model: bool = True) -> Path:
        (tmp_path / "pipelines").mkdir(exist_ok=True)
        if pipeline is not None:
            target = tmp_path / "pipelines" / "p.yaml"
            target.write_bytes(pipeline if isinstance(pipeline, bytes) else pipeline.encode())
        if model:
            write_model_dir(tmp_path / "models" / "m")
        path = tmp_path / "clara.yaml"
        path.write_bytes(project if isinstance(project, bytes) else project.encode())
        return path

    return make
