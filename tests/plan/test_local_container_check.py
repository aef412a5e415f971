"""DESIGN §5: on the local target an operator with a container image runs through podman or docker;
with neither installed, `plan` fails up front naming the pipeline file and the operator."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.platform.engine.executor import LocalExecutor


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "p"
    assert CliRunner().invoke(app, ["init", str(root), "--blueprint", "minimal"]).exit_code == 0
    pipeline = next((root / "pipelines").glob("*.yaml"))
    pipeline.write_text(pipeline.read_text().replace("image: claractl/dicom-reader", "image: myorg/custom-op"))
    return root, pipeline


def test_plan_fails_when_no_container_runtime_can_run_an_image(project, monkeypatch):
    root, pipeline = project
    monkeypatch.setattr(LocalExecutor, "container_runtime", lambda self: None)
    result = CliRunner().invoke(app, ["-C", str(root), "plan"])
    assert result.exit_code == 1
    assert f"{pipeline}: operator 'dicom-reader' uses container image 'myorg/custom-op'" in result.output
    assert "podman or docker" in result.output
    assert not (root / ".clara").exists()           # refused before anything was started


def test_bundled_operators_need_no_container_runtime(project, monkeypatch):
    root, pipeline = project
    pipeline.write_text(pipeline.read_text().replace("image: myorg/custom-op", "image: claractl/dicom-reader"))
    monkeypatch.setattr(LocalExecutor, "container_runtime", lambda self: None)
    from claractl.project import load_project
    from claractl.targets import get_target

    get_target(load_project(root / "clara.yaml")).check()          # no error
