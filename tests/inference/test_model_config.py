"""config.pbtxt checks: each malformed model directory gives one clear file:line:col error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from claractl.platform.inference import ModelConfigError, config_from_json, config_to_json, digest, load_model_dir
from .onnx_models import CONV_CONFIG, SIMPLE_CONFIG, add_sub, conv3d, identity, write_model

REFERENCE = Path(__file__).resolve().parents[2] / "blueprints/ct-segmentation/models/ct-organs"


def _simple(tmp_path, config=SIMPLE_CONFIG, name="simple", builders=None):
    return write_model(tmp_path, name, config, {1: add_sub} if builders is None else builders)


def _errors(model_dir, **kwargs) -> str:
    with pytest.raises(ModelConfigError) as info:
        load_model_dir(model_dir, **kwargs)
    assert info.value.diagnostics
    return str(info.value)


# (case id, edit of SIMPLE_CONFIG, expected text including line:col and key)
MALFORMED = [
    ("syntax", lambda c: c.replace("output [", "output [[["), ":9:"),
    ("unknown-field", lambda c: c.replace("max_batch_size: 8", "max_batch: 8"),
     'config.pbtxt:4:1: Message type "inference.ModelConfig" has no field named "max_batch"'),
    ("bad-enum", lambda c: c.replace("data_type: TYPE_INT32 dims: [ 16 ] },\n  { name: \"INPUT1\"",
                                     "data_type: TYPE_FP33 dims: [ 16 ] },\n  { name: \"INPUT1\""),
     'no value named TYPE_FP33'),
    ("name-mismatch", lambda c: c.replace('name: "simple"', 'name: "other"'),
     "config.pbtxt:2:1: name: name 'other' does not match the model folder 'simple'"),
    ("unsupported-platform", lambda c: c.replace("onnxruntime_onnx", "pytorch_libtorch"),
     "config.pbtxt:3:1: platform: platform 'pytorch_libtorch' is not supported by the embedded inference service"),
    ("platform-backend-conflict", lambda c: c.replace('platform: "onnxruntime_onnx"',
                                                      'platform: "onnxruntime_onnx"\nbackend: "python"'),
     "config.pbtxt:4:1: backend: backend 'python' contradicts platform 'onnxruntime_onnx'"),
    ("input-not-in-graph", lambda c: c.replace('name: "INPUT1"', 'name: "INPUT_1"'),
     "config.pbtxt:7:5: input[1].name: input 'INPUT_1' is not in the ONNX graph"),
    ("dtype-mismatch", lambda c: c.replace('{ name: "OUTPUT1" data_type: TYPE_INT32', '{ name: "OUTPUT1" data_type: TYPE_INT64'),
     "config.pbtxt:11:21: output[1].data_type: output 'OUTPUT1' is TYPE_INT64 in the config but INT32 in the ONNX graph"),
    ("rank-mismatch", lambda c: c.replace('{ name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ]',
                                          '{ name: "INPUT0" data_type: TYPE_INT32 dims: [ 4, 4 ]'),
     "input[0].dims: input 'INPUT0' has 3 dimensions [-1, 4, 4] (batch dimension added by max_batch_size)"),
    ("dim-mismatch", lambda c: c.replace('{ name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 16 ]',
                                         '{ name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 32 ]'),
     "config.pbtxt:10:51: output[0].dims[0]: output 'OUTPUT0' dimension 0 is 32 in the config but 16"),
    ("zero-dim", lambda c: c.replace('{ name: "INPUT0" data_type: TYPE_INT32 dims: [ 16 ]',
                                     '{ name: "INPUT0" data_type: TYPE_INT32 dims: [ 0 ]'),
     "input[0].dims[0]: input 'INPUT0' dimension 0 is 0; a dimension is >= 1, or -1 for variable size"),
    ("negative-batch", lambda c: c.replace("max_batch_size: 8", "max_batch_size: -2"),
     "config.pbtxt:4:1: max_batch_size: max_batch_size must be >= 0, got -2"),
    ("no-batch-but-batched-graph", lambda c: c.replace("max_batch_size: 8", "max_batch_size: 0"),
     "has 1 dimensions [16] but 2 in the ONNX graph"),
    ("duplicate-input", lambda c: c.replace('name: "INPUT1"', 'name: "INPUT0"'),
     "config.pbtxt:7:5: input[1].name: duplicate input name 'INPUT0'"),
    ("no-outputs", lambda c: c.split("output [")[0], "output: no output declared"),
    ("missing-dtype", lambda c: c.replace('{ name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }',
                                          '{ name: "INPUT1" dims: [ 16 ] }'),
     "input[1].data_type: input 'INPUT1' needs a data_type"),
    ("missing-specific-version", lambda c: c + "version_policy: { specific: { versions: [ 1, 3 ] } }\n",
     "version_policy.specific.versions: version 3 named by version_policy has no folder"),
    ("missing-label-file", lambda c: c.replace('dims: [ 16 ] },\n  { name: "OUTPUT1"',
                                               'dims: [ 16 ] label_filename: "labels.txt" },\n  { name: "OUTPUT1"'),
     "output[0].label_filename: label file 'labels.txt' not found"),
]


@pytest.mark.parametrize("case,edit,expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_names_file_line_and_problem(tmp_path, case, edit, expected):
    model_dir = _simple(tmp_path, edit(SIMPLE_CONFIG))
    message = _errors(model_dir)
    assert expected in message, message
    assert str(model_dir) in message


def test_missing_config_pbtxt(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    assert "m/config.pbtxt:1:1: missing config.pbtxt" in _errors(tmp_path / "m")


def test_no_version_folder(tmp_path):
    model_dir = _simple(tmp_path, builders={})
    assert "no numbered version folder" in _errors(model_dir)


def test_version_without_model_file(tmp_path):
    model_dir = _simple(tmp_path)
    (model_dir / "2").mkdir()
    message = _errors(model_dir)
    assert "version 2 has no model file 'model.onnx'" in message


def test_corrupt_onnx_file(tmp_path):
    model_dir = _simple(tmp_path, builders={1: lambda p: (p.parent.mkdir(parents=True), p.write_bytes(b"\x08\x01garbage"))})
    message = _errors(model_dir)
    assert "1/model.onnx:1:1: not a readable ONNX model" in message


def test_undeclared_graph_input(tmp_path):
    config = SIMPLE_CONFIG.replace('  { name: "INPUT1" data_type: TYPE_INT32 dims: [ 16 ] }\n', "").replace("dims: [ 16 ] },\n]", "dims: [ 16 ] }\n]", 1)
    message = _errors(_simple(tmp_path, config))
    assert "ONNX graph input 'INPUT1' is not declared in the config" in message


def test_every_problem_is_reported_at_once(tmp_path):
    config = SIMPLE_CONFIG.replace('name: "simple"', 'name: "x"').replace("max_batch_size: 8", "max_batch_size: -1")
    with pytest.raises(ModelConfigError) as info:
        load_model_dir(_simple(tmp_path, config))
    keys = [d.key_path for d in info.value.diagnostics]
    assert "name" in keys and "max_batch_size" in keys


def test_unsupported_backend_accepted_for_kubernetes(tmp_path):
    config = SIMPLE_CONFIG.replace("onnxruntime_onnx", "tensorrt_plan")
    model_dir = write_model(tmp_path, "simple", config, {})
    (model_dir / "1").mkdir()
    (model_dir / "1" / "model.plan").write_bytes(b"engine")
    info = load_model_dir(model_dir, allow_unsupported_backend=True)
    assert info.backend == "tensorrt" and not info.servable_here and info.versions == [1]
    assert "not supported by the embedded" in _errors(model_dir)


def test_variable_dims_default_filename_and_empty_name(tmp_path):
    config = """
backend: "onnxruntime"
default_model_filename: "net.onnx"
input { name: "x" data_type: TYPE_FP32 dims: [ -1, -1 ] }
output { name: "y" data_type: TYPE_FP32 dims: [ -1, 4 ] }
"""
    model_dir = write_model(tmp_path, "ident", config, {1: lambda p: identity(p.parent / "net.onnx")})
    info = load_model_dir(model_dir)
    assert info.name == "ident" and info.model_files[1].name == "net.onnx"


def test_reference_ct_organs_contract_is_accepted(tmp_path):
    """The blueprint's config.pbtxt as shipped, with a graph of the agreed shape."""
    model_dir = tmp_path / "ct-organs"
    shutil.copytree(REFERENCE, model_dir, ignore=shutil.ignore_patterns("[0-9]*"))
    conv3d(model_dir / "1" / "model.onnx", size=64, classes=4)
    info = load_model_dir(model_dir)
    assert info.versions == [1] and info.labels["OUTPUT__0"][:2] == ["background", "liver"]
    assert info.config.parameters["spacing_mm"].string_value == "4.0"


def test_digest_is_stable_and_content_addressed(tmp_path):
    model_dir = write_model(tmp_path / "a", "conv3d", CONV_CONFIG, {1: conv3d}, {"labels.txt": "bg\norgan\n"})
    copy = tmp_path / "b" / "conv3d"
    shutil.copytree(model_dir, copy)
    first = digest(model_dir)
    assert first.startswith("sha256:") and len(first) == 71
    assert digest(copy) == first == load_model_dir(model_dir).digest
    (copy / "labels.txt").write_text("bg\nliver\n")
    assert digest(copy) != first
    (copy / "labels.txt").rename(copy / "labels2.txt")
    assert digest(copy) != first
    (model_dir / ".DS_Store").write_text("editor litter")      # hidden files do not count
    assert digest(model_dir) == first


def test_digest_is_the_one_the_platform_records(tmp_path):
    from claractl.plan.digest import model_digest as plan_digest
    from claractl.platform.store.digest import model_digest as store_digest

    model_dir = write_model(tmp_path, "conv3d", CONV_CONFIG, {1: conv3d}, {"labels.txt": "bg\norgan\n"})
    assert digest(model_dir) == store_digest(model_dir) == plan_digest(model_dir)


def test_config_json_round_trip(tmp_path):
    info = load_model_dir(write_model(tmp_path, "simple", SIMPLE_CONFIG, {1: add_sub}))
    data = config_to_json(info.config)
    assert data["max_batch_size"] == 8 and data["input"][0]["dims"] == [16]
    assert config_from_json(data) == info.config
    compact = config_to_json(info.config, include_defaults=False)
    assert "dynamic_batching" not in compact and compact["name"] == "simple"
