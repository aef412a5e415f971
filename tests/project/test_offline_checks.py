"""validate catches offline what would fail later (issue 17): DICOM AE titles, hosts, the Triton
endpoint, model directories and config.pbtxt, paths leaving the project — each at FILE:LINE:COL
with its key, all in one pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom._validators import validate_ae

from claractl.project import ProjectError, load_project
from claractl.project.check import check_file

from .conftest import BASE_PROJECT, MODEL_CONFIG, write_model_dir


def problems(path: Path) -> list[str]:
    """Every diagnostic validate prints for the project, relative to its folder."""
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        return [str(d) for d in check_file("clara.yaml").diagnostics]
    finally:
        os.chdir(cwd)


def proj(old: str, new: str) -> str:
    assert old in BASE_PROJECT, old
    return BASE_PROJECT.replace(old, new, 1)


# --- AE titles: the DICOM AE value representation, as pynetdicom enforces it --------------------

@pytest.mark.parametrize("title", ["PACSé", "A\\B", "TAB\tX", "    ", "NL\n"])
def test_an_ae_title_pynetdicom_refuses_is_refused_at_its_key(make_project, title):
    import json
    path = make_project(proj("{name: src, ae-title: SRC,", f"{{name: src, ae-title: {json.dumps(title)},"))
    assert [p for p in problems(path) if p.startswith("clara.yaml:14:")] == [
        f"clara.yaml:14:27: sources[0].ae-title: {json.dumps(title, ensure_ascii=False)}: a DICOM AE title is ASCII "
        "letters, digits, spaces and punctuation, with no backslash or control characters, and not only spaces"]


@settings(max_examples=200, deadline=None)
@given(title=st.text(st.characters(max_codepoint=0x17F), min_size=1, max_size=17))
def test_ae_titles_validate_accepts_are_the_ones_pynetdicom_accepts(title):
    """The schema's AE rule against pynetdicom's own validator (called/calling AE: not all spaces)."""
    from claractl.project.schemas import validator

    schema_ok = not list(validator("project").iter_errors(
        {"apiVersion": "claractl/v1", "kind": "Project", "name": "x",
         "sources": [{"name": "s", "ae-title": title, "host": "h"}]}))
    pynetdicom_ok = validate_ae(title)[0] and bool(title.strip())
    assert schema_ok == pynetdicom_ok, (title, validate_ae(title))


# --- hosts and the Triton endpoint ---------------------------------------------------------------

@pytest.mark.parametrize("host, message", [
    ("999.1.1.1", "'999.1.1.1' is not a valid IPv4 address"),
    ("pacs..local", "'pacs..local' is not a host name or IP address"),
    ("-pacs", "'-pacs' is not a host name or IP address"),
])
def test_a_destination_host_that_cannot_be_connected_to(make_project, host, message):
    path = make_project(proj("{name: pacs, ae-title: PACS, host: 127.0.0.1,", f"{{name: pacs, ae-title: PACS, host: '{host}',"))
    found = problems(path)
    assert len(found) == 1 and found[0].startswith("clara.yaml:16:40: destinations[0].host: " + message), found


@pytest.mark.parametrize("host", ["pacs.hospital.example", "PACS_01", "10.1.2.3", "::1", "[fe80::1]", "fqdn.example."])
def test_real_hosts_are_accepted(make_project, host):
    assert problems(make_project(proj("host: 127.0.0.1, port", f"host: '{host}', port"))) == []


def test_triton_url_and_listen_addresses(make_project):
    path = make_project(proj("models:", "services:\n  triton: {url: 'ftp://triton'}\n"
                                        "  dicom-adapter: {host: '300.0.0.1'}\nmodels:"))
    assert problems(path) == [
        "clara.yaml:5:17: services.triton.url: 'ftp://triton': expected HOST:PORT or an http:// or https:// URL",
        "clara.yaml:6:25: services.dicom-adapter.host: '300.0.0.1' is not a valid IPv4 address"]


def test_a_secret_host_is_not_shown(make_project, monkeypatch):
    monkeypatch.setenv("CLARA_TEST_TRITON", "not a host!")
    path = make_project(proj("models:", "services: {triton: {url: '${env:CLARA_TEST_TRITON}'}}\nmodels:"))
    assert problems(path) == []           # checked where it is used; its value is never printed


# --- model directories: config.pbtxt with the code plan and the platform use ---------------------

def test_a_config_pbtxt_that_does_not_parse_is_named_at_its_line(make_project):
    path = make_project()
    (path.parent / "models/m/config.pbtxt").write_text(MODEL_CONFIG.format(name="m").replace("max_batch_size: 0",
                                                                                             "max_batch_size 0 }"))
    assert problems(path) == ["models/m/config.pbtxt:3:16: 'max_batch_size 0 }': Expected \":\"."]


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.replace('name: "m"', 'name: "other"'),
     "models/m/config.pbtxt:1:1: name: name 'other' does not match the model's name in the project 'm'"),
    (lambda c: c.replace("onnxruntime_onnx", "pytorch_libtorch"),
     "models/m/config.pbtxt:2:1: platform: platform 'pytorch_libtorch' is not supported by the embedded inference"),
    (lambda c: c.replace("dims: [ 1, 4 ] } ]\noutput", "dims: [ 0 ] } ]\noutput"),
     "models/m/config.pbtxt:4:55: input[0].dims[0]: input 'INPUT0' dimension 0 is 0"),
    (lambda c: c + "output [ { name: \"L\" data_type: TYPE_FP32 dims: [ 1 ] label_filename: \"labels.txt\" } ]\n",
     "models/m/config.pbtxt:6:55: output[1].label_filename: label file 'labels.txt' not found"),
    (lambda c: c + "version_policy: { specific: { versions: [ 2 ] } }\n",
     "models/m/config.pbtxt:6:43: version_policy.specific.versions: version 2 named by version_policy has no folder"),
])
def test_a_model_directory_the_platform_would_refuse(make_project, edit, expected):
    path = make_project()
    config = path.parent / "models/m/config.pbtxt"
    config.write_text(edit(MODEL_CONFIG.format(name="m")))
    found = problems(path)
    assert len([f for f in found if f.startswith(expected)]) == 1, found


def test_backends_only_real_triton_serves_are_fine_on_kubernetes(make_project):
    path = make_project(proj("models:", "target: {type: kubernetes}\nmodels:"))
    config = path.parent / "models/m/config.pbtxt"
    config.write_text(MODEL_CONFIG.format(name="m").replace("onnxruntime_onnx", "pytorch_libtorch"))
    (path.parent / "models/m/1/model.pt").write_bytes(b"pt")
    assert problems(path) == []


def test_a_link_in_a_model_directory_is_refused_like_the_upload_does(make_project, tmp_path_factory):
    path = make_project()
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("not for the platform")
    (path.parent / "models/m/notes.txt").symlink_to(outside)
    assert problems(path) == ["models/m/notes.txt:1:1: notes.txt is a symbolic link; a model directory is uploaded "
                              "as its files, and links are refused (copy the file instead)"]


def test_plan_parses_config_pbtxt_with_the_same_code(make_project):
    from claractl.plan import modelconfig
    from claractl.project import modelconfig as shared

    assert modelconfig.parse_config_text is shared.parse_config_text
    path = make_project()
    assert modelconfig.summary_of_dir(path.parent / "models/m")["inputs"] == ["INPUT0"]


# --- paths stay in the project unless the project allows a directory ----------------------------

@pytest.fixture
def outside_dir(tmp_path_factory) -> Path:
    """A directory beside the project with a pipeline file that must never be read."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "p.yaml").write_text("this: [is not: a pipeline\n")       # reading it would be an error too
    write_model_dir(outside / "m")
    return outside


def test_paths_that_leave_the_project_are_errors_and_are_not_read(make_project, outside_dir):
    path = make_project()
    relative = os.path.relpath(outside_dir, path.parent)
    text = proj("file: pipelines/p.yaml", f"file: {relative}/p.yaml").replace("path: models/m", f"path: {outside_dir}/m")
    path.write_text(text.replace("models:", "target: {local: {state-dir: /var/tmp/clara-state}}\n"
                                            "services: {platform: {database: 'sqlite:////var/tmp/x.db'}}\nmodels:"))
    found = problems(path)
    assert [f.split(": ", 2)[:2] for f in found] == [
        ["clara.yaml:4:29", "target.local.state-dir"], ["clara.yaml:5:33", "services.platform.database"],
        ["clara.yaml:8:11", "models[0].path"], ["clara.yaml:11:11", "pipelines[0].file"]]
    assert all("is outside the project folder" in f for f in found), found
    assert not any("p.yaml:" in f for f in found)          # the outside pipeline file was not parsed


def test_a_sqlite_file_is_in_the_state_dir(make_project):
    path = make_project(proj("models:", "services: {platform: {database: 'sqlite:///../../x.db'}}\nmodels:"))
    assert problems(path) == ["clara.yaml:4:33: services.platform.database: the database file ../../x.db (in the state "
                              "dir): .clara/../../x.db is outside the project folder; list the directory under "
                              "`allow-paths` to allow it"]


def test_a_symbolic_link_out_of_the_project_is_outside_too(make_project, outside_dir):
    path = make_project()
    (path.parent / "shared").symlink_to(outside_dir)
    path.write_text(proj("file: pipelines/p.yaml", "file: shared/p.yaml"))
    assert problems(path) == [f"clara.yaml:9:11: pipelines[0].file: shared/p.yaml is outside the project folder "
                              f"(through a symbolic link, to {outside_dir / 'p.yaml'}); list the directory under "
                              "`allow-paths` to allow it"]


def test_allow_paths_admits_a_shared_model_folder(make_project, outside_dir):
    path = make_project(proj("path: models/m", f"path: {outside_dir}/m") + f"allow-paths: [{outside_dir}]\n")
    project = load_project(path)
    assert project.models[0].path == (outside_dir / "m").resolve()


def test_allow_paths_must_exist(make_project):
    path = make_project(BASE_PROJECT + "allow-paths: [../no-such-dir]\n")
    assert problems(path) == ["clara.yaml:17:15: allow-paths[0]: no directory ../no-such-dir"]


def test_every_problem_in_one_pass(make_project, outside_dir):
    path = make_project(proj("{name: src, ae-title: SRC, host: 127.0.0.1}", "{name: src, ae-title: 'SRCé', host: '1.2.3.999'}")
                        .replace("path: models/m", f"path: {outside_dir}/m").replace("pipelines: [p]", "pipelines: [q]"))
    (path.parent / "pipelines/p.yaml").write_text("api-version: 0.6.0\nname: p\noperators: []\n")
    with pytest.raises(ProjectError) as info:
        load_project(path)
    keys = [d.key_path for d in info.value.diagnostics]
    # outside path, unknown pipeline, AE title, host, and the pipeline file's empty operators
    assert keys == ["models[0].path", "ae-titles[0].pipelines[0]", "sources[0].ae-title", "sources[0].host",
                    "operators"], keys


def test_a_path_with_a_nul_character_is_an_error_not_a_crash(make_project):
    path = make_project(proj("file: pipelines/p.yaml", 'file: "pipelines/p\\0.yaml"'))
    assert problems(path) == ["clara.yaml:9:11: pipelines[0].file: 'pipelines/p\\x00.yaml' is not a path: "
                              "it contains a NUL character"]


def test_a_path_longer_than_the_system_allows_is_an_error_not_a_crash(make_project):
    path = make_project(proj("path: models/m", "path: models/" + "m" * 300))
    assert problems(path) == ["clara.yaml:6:11: models[0].path: 'models/mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm'… is not "
                              "a path: longer than the system allows (255 bytes a name, 4096 in all)"]
