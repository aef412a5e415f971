"""Valid inputs: the typed project, defaults, secrets, placeholders, Clara's reference shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from claractl.project import (
    PlaceholderError, ProjectError, Secret, load_project, parse_pipeline, resolve_placeholders,
)
from claractl.project.yamlsource import MAX_FILE_BYTES, parse_file, parse_text

from .conftest import BASE_PIPELINE, BASE_PROJECT, write_model_dir

FIXTURES = Path(__file__).parent / "fixtures"


def test_base_project_loads_into_typed_values(make_project) -> None:
    path = make_project()
    project = load_project(path)
    assert project.name == "test"
    assert project.path == path.resolve()
    assert [m.name for m in project.models] == ["m"]
    assert project.models[0].path == (path.parent / "models" / "m").resolve()
    pipeline = project.pipelines[0]
    assert pipeline.name == "p" and pipeline.file == (path.parent / "pipelines" / "p.yaml").resolve()
    assert pipeline.definition_text == BASE_PIPELINE
    assert pipeline.definition["operators"][1]["models"] == [{"name": "m"}]
    assert pipeline.where.line == 8
    assert project.ae_titles[0].ae_title == "TEST" and project.ae_titles[0].group_by == "0020,000D"
    assert project.ae_titles[0].timeout == 5.0 and project.ae_titles[0].priority == "normal"
    assert (project.sources[0].name, project.sources[0].host) == ("src", "127.0.0.1")
    assert (project.destinations[0].ae_title, project.destinations[0].port) == ("PACS", 4242)


def test_service_and_target_defaults_are_filled_in(make_project) -> None:
    project = load_project(make_project(BASE_PROJECT.replace("models:", "services: {dicom-adapter: {port: 104}}\nmodels:")))
    services = project.services
    assert services["platform"] == {"api-host": "127.0.0.1", "api-port": 8765, "grpc-port": 50051, "workers": 2,
                                    "database": "sqlite",
                                    "job-timeout": 600, "payload-retention": 86400, "service-idle": 60}
    assert services["dicom-adapter"]["port"] == 104
    assert services["dicom-adapter"]["ae-title"] == "CLARA"
    assert services["dicom-adapter"]["max-associations"] == 25
    assert services["dicom-adapter"]["reject-unknown-sources"] is True
    assert services["dicom-adapter"]["storage"]["watermark-percent"] == 85
    assert services["triton"]["enabled"] is True and services["triton"]["gpus"] == 0
    assert "tritonserver" in services["triton"]["image"]
    assert services["render"] == {"enabled": True, "port": 8080}
    assert project.target.type == "local"
    assert project.target.local["state-dir"] == str(project.root / ".clara")
    assert project.target.kubernetes["namespace"] == "clara"


def test_operator_request_defaults_are_clara_defaults(make_project) -> None:
    project = load_project(make_project())
    assert project.pipelines[0].definition["operators"][0]["requests"] == {"cpu": 2, "gpu": 0, "memory": 1024}


def test_env_values_become_secrets_that_never_print(make_project, monkeypatch) -> None:
    monkeypatch.setenv("CLARA_TEST_DB_PASSWORD", "s3cret-value")
    text = BASE_PROJECT.replace(
        "models:", "services: {platform: {database: 'postgresql://clara:${env:CLARA_TEST_DB_PASSWORD}@db/clara'}}\nmodels:")
    project = load_project(make_project(text))
    secret = project.services["platform"]["database"]
    assert isinstance(secret, Secret)
    assert secret.env == "CLARA_TEST_DB_PASSWORD"
    assert secret.value == "postgresql://clara:s3cret-value@db/clara"
    assert "s3cret" not in str(secret) and "s3cret" not in repr(secret) and "s3cret" not in repr(project)


def test_whole_database_url_from_env(make_project, monkeypatch) -> None:
    monkeypatch.setenv("CLARA_TEST_DB_URL", "postgresql://clara:pw@db/clara")
    text = BASE_PROJECT.replace("models:", "services: {platform: {database: '${env:CLARA_TEST_DB_URL}'}}\nmodels:")
    secret = load_project(make_project(text)).services["platform"]["database"]
    assert isinstance(secret, Secret) and secret.value == "postgresql://clara:pw@db/clara"


def test_env_outside_services_and_target_is_an_error(make_project, monkeypatch) -> None:
    monkeypatch.setenv("CLARA_TEST_HOST", "10.0.0.1")
    text = BASE_PROJECT.replace("host: 127.0.0.1, port", "host: '${env:CLARA_TEST_HOST}', port")
    with pytest.raises(ProjectError) as caught:
        load_project(make_project(text))
    assert "only allowed under services and target" in str(caught.value)


def test_missing_env_error_does_not_leak_other_values(make_project, monkeypatch) -> None:
    monkeypatch.delenv("CLARA_TEST_MISSING", raising=False)
    text = BASE_PROJECT.replace("models:", "services: {platform: {api-token: '${env:CLARA_TEST_MISSING}'}}\nmodels:")
    with pytest.raises(ProjectError) as caught:
        load_project(make_project(text))
    assert "CLARA_TEST_MISSING is not set" in str(caught.value)


def test_every_problem_is_reported_sorted_by_position(make_project) -> None:
    text = BASE_PROJECT.replace("port: 4242", "port: 0").replace("pipelines: [p]", "pipelines: [q]") \
        .replace("kind: Project", "kind: Projekt")
    with pytest.raises(ProjectError) as caught:
        load_project(make_project(text, BASE_PIPELINE.replace("from: reader", "from: nobody")))
    lines = [(d.location.file.rsplit("/", 1)[-1], d.location.line) for d in caught.value.diagnostics]
    assert lines == [("clara.yaml", 2), ("clara.yaml", 12), ("clara.yaml", 16), ("p.yaml", 10)]


def test_kubernetes_target_allows_equal_ports(make_project) -> None:
    text = BASE_PROJECT.replace("models:", "target: {type: kubernetes}\nservices: {render: {port: 8765}}\nmodels:")
    assert load_project(make_project(text)).target.type == "kubernetes"


def test_export_on_a_pipeline(make_project) -> None:
    text = BASE_PROJECT.replace("    file: pipelines/p.yaml\n", "    file: pipelines/p.yaml\n    lifecycle: {protect: true}\n"
                                "    export: [{agent: ClaraSCU, destinations: [pacs]}, {agent: renderserver}]\n")
    pipeline = load_project(make_project(text)).pipelines[0]
    assert pipeline.export == [{"agent": "ClaraSCU", "destinations": ["pacs"]},
                               {"agent": "renderserver", "destinations": []}]
    assert pipeline.lifecycle.protect is True


@pytest.mark.parametrize("fixture", ["clara-0.4.0-trtis.yaml", "clara-0.6.0-models.yaml"])
def test_clara_reference_pipeline_shapes_validate(fixture: str) -> None:
    definition = parse_pipeline((FIXTURES / fixture).read_text(), fixture)
    assert definition["operators"][0]["name"] == "dicom-reader"
    assert all("requests" in op for op in definition["operators"])


def test_clara_040_trtis_service_is_kept() -> None:
    definition = parse_pipeline((FIXTURES / "clara-0.4.0-trtis.yaml").read_text())
    service = definition["operators"][1]["services"][0]
    assert service["connections"]["http"] == [{"name": "NVIDIA_CLARA_TRTISURI", "port": 8000}]


def test_parse_pipeline_needs_no_file_and_names_the_source() -> None:
    with pytest.raises(ProjectError) as caught:
        parse_pipeline("api-version: 0.6.0\nname: x\noperators: []\n", "PUT /pipelines/x")
    [diagnostic] = caught.value.diagnostics
    assert str(diagnostic) == "PUT /pipelines/x:3:12: operators: needs at least 1 item"


def test_parse_pipeline_does_not_check_project_references() -> None:
    # MYPACS and the model are project-level references; the API checks them against its own tables.
    assert parse_pipeline((FIXTURES / "clara-0.6.0-models.yaml").read_text())["name"] == "spleen-segmentation"


def test_resolve_placeholders_uses_defaults_and_variables() -> None:
    definition = parse_pipeline((FIXTURES / "clara-0.6.0-models.yaml").read_text())
    resolved = resolve_placeholders(definition, {"RESULTS_AGENT": "renderserver"})
    assert resolved["operators"][2]["variables"]["NVIDIA_CLARA_DCM_SERIES_DESC"] == "Spleen segmentation"
    assert resolved["operators"][3]["container"]["command"][3] == "renderserver"
    assert definition["operators"][3]["container"]["command"][3] == "${{ RESULTS_AGENT }}"   # input untouched


def test_resolve_placeholders_rejects_unknown_variables() -> None:
    definition = parse_pipeline((FIXTURES / "clara-0.6.0-models.yaml").read_text())
    with pytest.raises(PlaceholderError, match="has no parameter 'SERIES_DESCRIPTION'"):
        resolve_placeholders(definition, {"SERIES_DESCRIPTION": "x"})


def test_resolve_placeholders_needs_a_value_without_default() -> None:
    definition = parse_pipeline("api-version: 0.6.0\nname: x\nparameters: {WHO: null}\noperators:\n"
                                "- {name: a, container: {image: i, command: [echo, '${{ WHO }}']}}\n")
    with pytest.raises(ValueError, match="'WHO' has no default"):
        resolve_placeholders(definition, {})
    assert resolve_placeholders(definition, {"WHO": True})["operators"][0]["container"]["command"] == ["echo", "true"]


def test_file_over_ten_megabytes_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        out.truncate(MAX_FILE_BYTES + 1)          # sparse: cheap to create, would be junk if read
    with pytest.raises(ProjectError, match="larger than the 10 MB limit"):
        parse_file(big)


def test_deep_nesting_is_a_clear_error() -> None:
    with pytest.raises(ProjectError, match="nested more than"):
        parse_text("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")


def test_positions_of_keys_and_values() -> None:
    doc = parse_text("a:\n  b: [1, {c: x}]\n", "f.yaml")
    assert (doc.at(("a", "b", 1, "c")).line, doc.at(("a", "b", 1, "c")).column) == (2, 14)
    assert (doc.key_at(("a", "b")).line, doc.key_at(("a", "b")).column) == (2, 3)


def test_yaml_11_oddities_stay_strings_where_json_has_no_type() -> None:
    doc = parse_text("on: 2024-01-01\nmerged: {<<: {a: 1}, b: 2}\n", "f.yaml")
    assert doc.data == {"on": "2024-01-01", "merged": {"a": 1, "b": 2}}


def test_schemas_are_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    from claractl.project.schemas import KINDS, load_schema
    for kind in KINDS:
        Draft202012Validator.check_schema(load_schema(kind))
        assert load_schema(kind)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_yaml_of_the_design_example_is_accepted(tmp_path: Path) -> None:
    write_model_dir(tmp_path / "models" / "ct-organs")
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "ct-organ-seg.yaml").write_text(BASE_PIPELINE.replace("{name: m}", "{name: ct-organs}"))
    design = yaml.safe_load(DESIGN_EXAMPLE)
    assert design["services"]["triton"]["gpus"] == 1
    (tmp_path / "clara.yaml").write_text(DESIGN_EXAMPLE)
    project = load_project(tmp_path / "clara.yaml")
    assert project.services["platform"]["api-port"] == 8765 and project.ae_titles[0].group_by == "0020,000E"


DESIGN_EXAMPLE = """\
apiVersion: claractl/v1
kind: Project
name: radiology-ai
target:
  type: local                     # local | kubernetes
  local: {state-dir: .clara}
  kubernetes: {context: "", namespace: clara, storage-class: ""}
services:
  platform:      {api-port: 8765, workers: 2, database: "sqlite"}   # or postgresql://…
  dicom-adapter: {port: 11112, ae-title: CLARA, max-associations: 25,
                  reject-unknown-sources: true, storage: {watermark-percent: 85}}
  triton:        {enabled: true, image: "nvcr.io/nvidia/tritonserver:24.08-py3", gpus: 1}
  render:        {enabled: true, port: 8080}
models:
  - name: ct-organs
    path: models/ct-organs        # Triton model dir: config.pbtxt + <version>/model.onnx
pipelines:
  - name: ct-organ-seg
    file: pipelines/ct-organ-seg.yaml     # a Clara pipeline definition (section 3)
ae-titles:
  - ae-title: ORGANSEG            # called AE title on the DICOM adapter (≤16 chars)
    pipelines: [ct-organ-seg]
    group-by: "0020,000E"         # default study "0020,000D"
    timeout: 5                    # s of inactivity that closes a group
    priority: normal              # lower | normal | higher | immediate
sources:                          # who may send (calling AE + host); others are rejected
  - {name: pacs-main, ae-title: PACS1, host: 127.0.0.1}
destinations:                     # where results go
  - {name: pacs-main, ae-title: PACS1, host: 127.0.0.1, port: 4242}
"""


def test_kubernetes_only_service_keys_are_accepted(make_project) -> None:
    services = ("services:\n  platform: {image: 'claractl/claractl:0.1.0', storage-size: 20Gi}\n"
                "  dicom-adapter: {service-type: NodePort, node-port: 30104, service-port: 104}\n"
                "  triton: {embedded: true}\n  render: {service-type: LoadBalancer}\n")
    project = load_project(make_project(BASE_PROJECT.replace("models:", "target: {type: kubernetes}\n" + services + "models:")))
    assert project.services["dicom-adapter"]["node-port"] == 30104
    assert project.services["triton"]["embedded"] is True
