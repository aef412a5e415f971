"""`claractl render`: one manifest file per service for GitOps, no secret values, clear errors."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from claractl.cli.main import app

runner = CliRunner()

PROJECT = """\
apiVersion: claractl/v1
kind: Project
name: gitops-demo
target:
  type: kubernetes
  kubernetes: {namespace: imaging, storage-class: ssd}
services:
  platform: {api-port: 8765, workers: 2, database: "postgresql://clara:${env:CLARA_DB_PASSWORD}@db.internal/clara"}
  dicom-adapter: {port: 11112, ae-title: CLARA}
  triton: {enabled: true, gpus: 1}
  render: {enabled: false}
pipelines: []
"""


def project_dir(tmp_path, text=PROJECT):
    (tmp_path / "clara.yaml").write_text(text)
    return tmp_path


def test_render_writes_one_file_per_service_without_secret_values(tmp_path, monkeypatch):
    monkeypatch.setenv("CLARA_DB_PASSWORD", "hunter2")
    out = tmp_path / "manifests"
    result = runner.invoke(app, ["-C", str(project_dir(tmp_path)), "render", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["dicom-adapter.yaml", "platform.yaml", "triton.yaml"]
    platform = [d for d in yaml.safe_load_all((out / "platform.yaml").read_text()) if d]
    assert {d["kind"] for d in platform} == {"ConfigMap", "Deployment", "PersistentVolumeClaim", "Role",
                                             "RoleBinding", "Service", "ServiceAccount"}
    assert all(d["metadata"]["namespace"] == "imaging" for d in platform)
    assert all(d["metadata"]["labels"]["claractl.dev/project"] == "gitops-demo" for d in platform)
    everything = "".join(p.read_text() for p in out.iterdir()) + result.output
    assert "hunter2" not in everything
    assert "create Secret clara-platform-database (key url)" in result.output


def test_render_to_stdout_and_positional_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CLARA_DB_PASSWORD", "pw")
    directory = project_dir(tmp_path)
    result = runner.invoke(app, ["-C", str(directory), "render"])
    assert result.exit_code == 0
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert ("Deployment", "clara-triton") in {(d["kind"], d["metadata"]["name"]) for d in docs}
    result = runner.invoke(app, ["-C", str(directory), "render", "out"])
    assert result.exit_code == 0 and (directory / "out" / "triton.yaml").exists()


def test_invalid_project_names_file_line_and_key(tmp_path):
    bad = PROJECT.replace("gpus: 1", "gpus: -1").replace('"postgresql://clara:${env:CLARA_DB_PASSWORD}@db.internal/clara"', "sqlite")
    result = runner.invoke(app, ["-C", str(project_dir(tmp_path, bad)), "render", "out"])
    assert result.exit_code == 1
    assert "clara.yaml:10:33: services.triton.gpus:" in result.output
    assert not (tmp_path / "out").exists()
