"""Blueprints render valid projects; the CLI's exit codes and output formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from claractl import resources
from claractl.cli.main import app
from claractl.project import load_project
from claractl.project.blueprints import BlueprintError, list_blueprints, render_blueprint

from .conftest import BASE_PROJECT

REFERENCE_PIPELINE = """\
api-version: 0.6.0
name: ct-organ-seg
operators:
- name: dicom-reader
  container: {image: claractl/dicom-reader, tag: "0.1.0", command: [python, -m, claractl_operators.dicom_reader, --input, /input, --output, /output]}
  input: [{path: /input}]
  output: [{path: /output}]
  requests: {cpu: 1, memory: 1024}
- name: ai-inference
  container: {image: claractl/ai-inference, tag: "0.1.0", command: [python, -m, claractl_operators.ai_inference, --input, /input, --output, /output, --model, ct-organs]}
  input: [{from: dicom-reader, path: /input}]
  output: [{path: /output}]
  models: [{name: ct-organs}]
  requests: {cpu: 1, memory: 2048}
- name: dicom-seg-writer
  container: {image: claractl/dicom-seg-writer, tag: "0.1.0", command: [python, -m, claractl_operators.dicom_seg_writer, --dicom, /dicom, --labels, /labels, --output, /output, --model, ct-organs]}
  input: [{path: /dicom}, {from: ai-inference, path: /labels}]
  output: [{path: /output}]
  requests: {cpu: 1, memory: 1024}
- name: register-results
  container: {image: claractl/register-results, tag: "0.1.0", command: [python, -m, claractl_operators.register_results, --agent, ClaraSCU, --data, '["pacs"]', --input, /input]}
  input: [{from: dicom-seg-writer, path: /input}]
  requests: {cpu: 1, memory: 256}
"""

runner = CliRunner()


def test_both_blueprints_are_listed() -> None:
    assert {"minimal", "ct-segmentation"} <= {b.name for b in list_blueprints()}


@pytest.mark.parametrize("name", ["minimal", "ct-segmentation"])
def test_blueprint_is_valid_as_generated(name: str, tmp_path: Path) -> None:
    written = render_blueprint(name, tmp_path / "proj")
    assert tmp_path / "proj" / "clara.yaml" in written
    project = load_project(tmp_path / "proj" / "clara.yaml")
    assert project.name == "proj"
    first_line = (tmp_path / "proj" / "clara.yaml").read_text().splitlines()[0]
    assert first_line == f"# yaml-language-server: $schema={resources.SCHEMAS_DIR.as_uri()}/project.schema.json"


def test_reference_project_matches_the_operator_contract(tmp_path: Path) -> None:
    render_blueprint("ct-segmentation", tmp_path)
    project = load_project(tmp_path / "clara.yaml")
    pipeline = project.pipelines[0]
    assert yaml.safe_load(pipeline.definition_text) == yaml.safe_load(REFERENCE_PIPELINE)
    assert [m.name for m in project.models] == ["ct-organs"]
    assert project.ae_titles[0].ae_title == "ORGANSEG" and project.ae_titles[0].pipelines == ["ct-organ-seg"]
    assert (project.ae_titles[0].group_by, project.ae_titles[0].timeout) == ("0020,000E", 5.0)
    assert (project.sources[0].ae_title, project.sources[0].host) == ("PACS1", "127.0.0.1")
    dest = project.destinations[0]
    assert (dest.name, dest.ae_title, dest.host, dest.port) == ("pacs", "PACS1", "127.0.0.1", 4242)


def test_model_files_are_copied_byte_for_byte(tmp_path: Path) -> None:
    render_blueprint("ct-segmentation", tmp_path)
    source = resources.BLUEPRINTS_DIR / "ct-segmentation" / "models" / "ct-organs"
    for path in (p for p in source.rglob("*") if p.is_file()):
        assert (tmp_path / "models" / "ct-organs" / path.relative_to(source)).read_bytes() == path.read_bytes()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "clara.yaml").write_text("mine\n")
    with pytest.raises(BlueprintError, match="already has clara.yaml; use --force"):
        render_blueprint("minimal", tmp_path)
    assert (tmp_path / "clara.yaml").read_text() == "mine\n"
    assert not (tmp_path / "pipelines").exists()
    render_blueprint("minimal", tmp_path, force=True)
    assert "kind: Project" in (tmp_path / "clara.yaml").read_text()


def test_unknown_blueprint_names_the_available_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "--blueprint", "nope"])
    assert result.exit_code == 1
    assert "no blueprint named 'nope'; available: ct-segmentation, minimal" in result.output


def test_cli_init_then_validate_exits_zero(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "p"), "--blueprint", "ct-segmentation"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", "-f", str(tmp_path / "p" / "clara.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("is valid: 1 model, 1 pipeline (4 operators), 1 AE title, 1 source, "
                                          "1 destination; target local")
    assert len(result.output.strip().splitlines()) == 1


def test_cli_init_list() -> None:
    result = runner.invoke(app, ["init", "--list"])
    assert result.exit_code == 0
    assert "ct-segmentation" in result.output and "minimal" in result.output


def test_cli_validate_prints_every_error_and_exits_one(make_project) -> None:
    path = make_project(BASE_PROJECT.replace("port: 4242", "port: 70000").replace("ae-title: TEST", "ae-title: ABCDEFGHIJKLMNOPQ"))
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"{path}:11:15: ae-titles[0].ae-title: \"ABCDEFGHIJKLMNOPQ\" is 17 characters long; at most 16 allowed",
        f"{path}:16:57: destinations[0].port: 70000 is out of range; expected 1 to 65535",
    ]
    assert "2 problems found" in result.stderr


def test_cli_validate_json_output(make_project) -> None:
    path = make_project(BASE_PROJECT.replace("port: 4242", "port: 0"))
    result = runner.invoke(app, ["validate", "-f", str(path), "-o", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["errors"] == [{"file": str(path), "line": 16, "column": 57, "key_path": "destinations[0].port",
                                 "message": "0 is out of range; expected 1 to 65535"}]


def test_cli_validate_default_file_with_dash_c(make_project) -> None:
    path = make_project()
    result = runner.invoke(app, ["-C", str(path.parent), "validate"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("clara.yaml: project 'test' is valid")


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.yaml'}:1:1: file not found" in result.output


def test_cli_validate_a_pipeline_file_alone(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(REFERENCE_PIPELINE)
    result = runner.invoke(app, ["validate", "-f", str(tmp_path / "p.yaml")])
    assert result.exit_code == 0, result.output
    assert "pipeline 'ct-organ-seg' is valid (4 operators)" in result.output


@pytest.mark.parametrize("kind", ["project", "pipeline", "operator"])
def test_cli_schema_prints_json(kind: str) -> None:
    result = runner.invoke(app, ["schema", kind])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cli_schema_rejects_unknown_kind() -> None:
    result = runner.invoke(app, ["schema", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["validate", "init", "schema"])
def test_help_reads_well(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "Traceback" not in result.output
