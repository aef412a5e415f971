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
            (tmp_path / "models" / "m").mkdir(parents=True, exist_ok=True)
            (tmp_path / "models" / "m" / "config.pbtxt").write_text('name: "m"\n')
        path = tmp_path / "clara.yaml"
        path.write_bytes(project if isinstance(project, bytes) else project.encode())
        return path

    return make
