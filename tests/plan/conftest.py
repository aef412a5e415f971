"""Fixtures for the plan engine: projects built by hand (claractl.project.model values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from claractl.project.model import (
    AETitleRef, DestinationRef, Lifecycle, ModelRef, PipelineRef, Project, Secret, SourceRef, Target,
)

PDL = """api-version: 0.4.0
name: {name}
operators:
  - name: reader
    container: {{image: claractl/dicom-reader, tag: "1.0", command: [python, -m, claractl_operators.dicom_reader]}}
    input: [{{path: /input}}]
    output: [{{path: /output}}]
  - name: seg
    container: {{image: claractl/ai-inference, tag: "{tag}"}}
    input: [{{from: reader, path: /input}}]
    output: [{{path: /output}}]
"""


def pdl(name: str, tag: str = "1.0") -> tuple[str, dict]:
    text = PDL.format(name=name, tag=tag)
    definition = {
        "api-version": "0.4.0", "name": name,
        "operators": [
            {"name": "reader", "container": {"image": "claractl/dicom-reader", "tag": "1.0",
                                             "command": ["python", "-m", "claractl_operators.dicom_reader"]},
             "input": [{"path": "/input"}], "output": [{"path": "/output"}]},
            {"name": "seg", "container": {"image": "claractl/ai-inference", "tag": tag},
             "input": [{"from": "reader", "path": "/input"}], "output": [{"path": "/output"}]},
        ],
    }
    return text, definition


def make_model_dir(root: Path, name: str, payload: bytes = b"onnx-bytes") -> Path:
    d = root / "models" / name
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: 0\n')
    (d / "1" / "model.onnx").write_bytes(payload)
    return d


def build_project(root: Path, *, name: str = "radiology-ai", tag: str = "1.0", protect: bool = False,
                  db_password: str | None = None, ae_timeout: float = 5.0) -> Project:
    model_dir = root / "models" / "ct-organs"
    if not model_dir.exists():
        make_model_dir(root, "ct-organs")
    text, definition = pdl("ct-organ-seg", tag)
    database = Secret("CLARA_DB_URL", f"postgresql://clara:{db_password}@db/clara") if db_password else "sqlite"
    return Project(
        name=name, path=root / "clara.yaml", target=Target(local={"state-dir": str(root / ".clara")}),
        services={
            "platform": {"api-port": 8765, "workers": 2, "database": database},
            "dicom-adapter": {"port": 11112, "ae-title": "CLARA", "storage": {"watermark-percent": 85}},
        },
        models=[ModelRef("ct-organs", model_dir, Lifecycle(protect))],
        pipelines=[PipelineRef("ct-organ-seg", root / "pipelines" / "ct.yaml", text, definition,
                               export=[{"agent": "dicom", "destinations": ["pacs-main"]}],
                               lifecycle=Lifecycle(protect))],
        ae_titles=[AETitleRef("ORGANSEG", ["ct-organ-seg"], "0020,000E", ae_timeout, "normal")],
        sources=[SourceRef("pacs-main", "PACS1", "127.0.0.1")],
        destinations=[DestinationRef("pacs-main", "PACS1", "127.0.0.1", 4242)],
    )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return build_project(tmp_path)
