"""Model repository: read and check one Triton model directory.

    <repository>/<model>/config.pbtxt       Triton's ModelConfig in protobuf text format
    <repository>/<model>/<version>/model.onnx   (or `default_model_filename`)
    <repository>/<model>/labels.txt         optional, named by an output's `label_filename`

`load_model_dir()` parses the config into `tritonclient.grpc.model_config_pb2.ModelConfig` and
collects every problem as a Diagnostic (file:line:col: key: message) before raising.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf import json_format, text_format
from google.protobuf.descriptor import FieldDescriptor
from tritonclient.grpc import model_config_pb2 as mc

from claractl.platform.inference.datatypes import ONNX_TO_CONFIG, onnx_type_name
from claractl.platform.inference.pbtxt_locations import FieldLocations
from claractl.platform.store.digest import model_digest
from claractl.project.model import Diagnostic, Location, ProjectError

CONFIG_FILE = "config.pbtxt"
ONNX_PLATFORM = "onnxruntime_onnx"
ONNX_BACKEND = "onnxruntime"

# Default model file per platform/backend, as Triton names them.
_DEFAULT_FILES = {
    "onnxruntime_onnx": "model.onnx", "onnxruntime": "model.onnx",
    "tensorrt_plan": "model.plan", "tensorrt": "model.plan",
    "pytorch_libtorch": "model.pt", "pytorch": "model.pt",
    "tensorflow_savedmodel": "model.savedmodel", "tensorflow_graphdef": "model.graphdef",
    "openvino": "model.xml", "python": "model.py", "fil": "xgboost.model",
}
_PLATFORM_BACKEND = {
    "onnxruntime_onnx": "onnxruntime", "tensorrt_plan": "tensorrt", "pytorch_libtorch": "pytorch",
    "tensorflow_savedmodel": "tensorflow", "tensorflow_graphdef": "tensorflow",
}


class ModelConfigError(ProjectError):
    """A model directory is invalid; `diagnostics` lists every problem found."""


@dataclass
class ModelInfo:
    name: str
    path: Path
    config: mc.ModelConfig
    backend: str                                   # "onnxruntime", "tensorrt", …
    versions: list[int]                            # versions served under version_policy
    available_versions: list[int]                  # every numbered version folder
    model_files: dict[int, Path]                   # served version → model file
    labels: dict[str, list[str]] = field(default_factory=dict)   # output name → class labels
    digest: str = ""

    @property
    def servable_here(self) -> bool:
        """The embedded (ONNX Runtime) service can serve it; others need real Triton."""
        return self.backend == ONNX_BACKEND


def digest(model_dir: str | os.PathLike[str]) -> str:
    """"sha256:<hex>" over the sorted relative paths, sizes and contents of the model dir's files.

    One algorithm for the whole platform: the store's (the API records it on upload, plan
    compares against it), so it is delegated, not repeated."""
    return model_digest(model_dir)


def parse_config_text(text: str, file: str) -> mc.ModelConfig:
    config = mc.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        message = re.sub(r"^\d+:\d+ : ", "", str(e))
        raise ModelConfigError([Diagnostic(Location(file, e.GetLine() or 1, e.GetColumn() or 1), "", message)]) from None
    return config


def config_from_json(data: dict[str, Any] | str, file: str = "<config>") -> mc.ModelConfig:
    """Triton's JSON form (load request `config` parameter) → ModelConfig."""
    config = mc.ModelConfig()
    try:
        if isinstance(data, str):
            json_format.Parse(data, config)
        else:
            json_format.ParseDict(data, config)
    except json_format.ParseError as e:
        raise ModelConfigError([Diagnostic(Location(file, 1, 1), "", str(e))]) from None
    return config


def config_to_json(config: mc.ModelConfig, include_defaults: bool = True) -> dict[str, Any]:
    """Triton's JSON form of a ModelConfig: proto field names, int64 as numbers (as Triton prints)."""
    data = json_format.MessageToDict(
        config, preserving_proto_field_name=True,
        always_print_fields_with_no_presence=include_defaults,
    )
    _int64_as_numbers(config.DESCRIPTOR, data)
    return data


_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}


def _is_repeated(f: FieldDescriptor) -> bool:
    repeated = getattr(f, "is_repeated", None)
    return repeated if repeated is not None else f.label == FieldDescriptor.LABEL_REPEATED


def _int64_as_numbers(desc, data: dict[str, Any]) -> None:
    for f in desc.fields:
        if f.name not in data:
            continue
        value = data[f.name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value_field = f.message_type.fields_by_name["value"]
            for key in value:
                if value_field.message_type is not None:
                    _int64_as_numbers(value_field.message_type, value[key])
                elif value_field.type in _INT64:
                    value[key] = int(value[key])
        elif f.message_type is not None:
            for item in (value if _is_repeated(f) else [value]):
                _int64_as_numbers(f.message_type, item)
        elif f.type in _INT64:
            data[f.name] = [int(v) for v in value] if _is_repeated(f) else int(value)


# ------------------------------------------------------------------------------------------
class _Checker:
    """Collects diagnostics for one model directory."""

    def __init__(self, model_dir: Path, text: str | None) -> None:
        self.dir = model_dir
        self.file = str(model_dir / CONFIG_FILE)
        self.where = FieldLocations(text) if text is not None else None
        self.diagnostics: list[Diagnostic] = []

    def error(self, key: str, message: str, file: str | None = None) -> None:
        line, col = self.where.find(key) if (self.where and key and file is None) else (1, 1)
        self.diagnostics.append(Diagnostic(Location(file or self.file, line, col), key, message))


def load_model_dir(
    path: str | os.PathLike[str],
    *,
    allow_unsupported_backend: bool = False,
    config_override: mc.ModelConfig | None = None,
) -> ModelInfo:
    """Parse and check a model directory. `allow_unsupported_backend` accepts backends only real
    Triton serves (the kubernetes target); their model files are checked to exist, not opened."""
    model_dir = Path(path)
    config_path = model_dir / CONFIG_FILE
    if not model_dir.is_dir():
        raise ModelConfigError([Diagnostic(Location(str(model_dir), 1, 1), "", "model directory does not exist")])
    if config_override is not None:
        config, text = config_override, None
    else:
        if not config_path.is_file():
            raise ModelConfigError([Diagnostic(Location(str(config_path), 1, 1), "",
                                               "missing config.pbtxt (a Triton model directory needs one)")])
        text = config_path.read_text(encoding="utf-8", errors="replace")
        config = parse_config_text(text, str(config_path))
    check = _Checker(model_dir, text)

    if not config.name:
        config.name = model_dir.name            # Triton fills an empty name from the folder
    elif config.name != model_dir.name:
        check.error("name", f"name '{config.name}' does not match the model folder '{model_dir.name}'")

    backend = _check_backend(config, check, allow_unsupported_backend)
    _check_tensors(config, check)
    _check_labels(config, check)
    available, versions, files = _check_versions(config, model_dir, backend, check)
    if backend == ONNX_BACKEND:
        for version in versions:
            if version in files:
                _check_against_onnx(config, files[version], check)

    if check.diagnostics:
        raise ModelConfigError(check.diagnostics)
    return ModelInfo(
        name=config.name, path=model_dir, config=config, backend=backend, versions=versions,
        available_versions=available, model_files=files, labels=_read_labels(config, model_dir),
        digest=digest(model_dir),
    )


def _check_backend(config: mc.ModelConfig, check: _Checker, allow_unsupported: bool) -> str:
    platform, backend = config.platform, config.backend
    if platform and backend and _PLATFORM_BACKEND.get(platform, backend) != backend:
        check.error("backend", f"backend '{backend}' contradicts platform '{platform}'")
    resolved = backend or _PLATFORM_BACKEND.get(platform, platform)
    if not resolved:
        name = config.default_model_filename or "model.onnx"
        if name.endswith(".onnx"):
            return ONNX_BACKEND                 # Triton picks onnxruntime for *.onnx too
        check.error("platform", "neither platform nor backend is set, and the model file is not .onnx")
        return ""
    if resolved != ONNX_BACKEND and not allow_unsupported:
        key = "backend" if backend else "platform"
        check.error(key, f"{key} '{backend or platform}' is not supported by the embedded inference service "
                         f"(it serves platform '{ONNX_PLATFORM}' / backend '{ONNX_BACKEND}'); "
                         "run it on the kubernetes target with Triton")
    return resolved


def _check_tensors(config: mc.ModelConfig, check: _Checker) -> None:
    if config.max_batch_size < 0:
        check.error("max_batch_size", f"max_batch_size must be >= 0, got {config.max_batch_size}")
    for kind, tensors in (("input", config.input), ("output", config.output)):
        if not tensors:
            check.error(kind, f"no {kind} declared; list every model {kind} with name, data_type and dims")
        seen: set[str] = set()
        for i, t in enumerate(tensors):
            key = f"{kind}[{i}]"
            if not t.name:
                check.error(key, f"{kind} without a name")
            elif t.name in seen:
                check.error(f"{key}.name", f"duplicate {kind} name '{t.name}'")
            seen.add(t.name)
            if t.data_type == mc.TYPE_INVALID:
                check.error(f"{key}.data_type", f"{kind} '{t.name}' needs a data_type (TYPE_FP32, …)")
            if not t.dims and config.max_batch_size == 0:
                check.error(f"{key}.dims", f"{kind} '{t.name}' needs dims (use -1 for a variable dimension)")
            for j, d in enumerate(t.dims):
                if d == 0 or d < -1:
                    check.error(f"{key}.dims[{j}]", f"{kind} '{t.name}' dimension {j} is {d}; "
                                "a dimension is >= 1, or -1 for variable size")


def _check_labels(config: mc.ModelConfig, check: _Checker) -> None:
    for i, out in enumerate(config.output):
        if out.label_filename and not (check.dir / out.label_filename).is_file():
            check.error(f"output[{i}].label_filename",
                        f"label file '{out.label_filename}' not found in {check.dir}")


def _read_labels(config: mc.ModelConfig, model_dir: Path) -> dict[str, list[str]]:
    labels = {}
    for out in config.output:
        if out.label_filename:
            lines = (model_dir / out.label_filename).read_text(encoding="utf-8").splitlines()
            labels[out.name] = [line.strip() for line in lines if line.strip()]
    return labels


def _check_versions(config: mc.ModelConfig, model_dir: Path, backend: str, check: _Checker):
    available = sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not available:
        check.error("", f"no numbered version folder (e.g. {model_dir}/1/model.onnx)", file=str(model_dir))
        return available, [], {}
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        versions = available
    elif which == "specific":
        versions = sorted(set(policy.specific.versions))
        for v in versions:
            if v not in available:
                check.error("version_policy.specific.versions",
                            f"version {v} named by version_policy has no folder {model_dir / str(v)}")
        versions = [v for v in versions if v in available]
    else:
        n = policy.latest.num_versions if which == "latest" else 1
        if n < 1:
            check.error("version_policy.latest.num_versions", "num_versions must be >= 1")
            n = 1
        versions = available[-n:]
    filename = config.default_model_filename or _DEFAULT_FILES.get(backend, _DEFAULT_FILES.get(config.platform, ""))
    files: dict[int, Path] = {}
    for v in versions:
        f = model_dir / str(v) / filename
        if filename and f.exists():
            files[v] = f
        elif backend:
            check.error("default_model_filename" if config.default_model_filename else "",
                        f"version {v} has no model file '{filename or '?'}' ({f})")
    return available, versions, files


def _onnx_dims(value_info) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in value_info.type.tensor_type.shape.dim]


def _check_against_onnx(config: mc.ModelConfig, model_file: Path, check: _Checker) -> None:
    try:
        model = onnx.load(str(model_file), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - any decode failure means "not an ONNX model"
        check.error("", f"not a readable ONNX model: {e}", file=str(model_file))
        return
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    graph_inputs = {vi.name: vi for vi in graph.input if vi.name not in initializers}
    graph_outputs = {vi.name: vi for vi in graph.output}
    for kind, tensors, in_graph in (("input", config.input, graph_inputs), ("output", config.output, graph_outputs)):
        for i, t in enumerate(tensors):
            key = f"{kind}[{i}]"
            vi = in_graph.get(t.name)
            if vi is None:
                check.error(f"{key}.name", f"{kind} '{t.name}' is not in the ONNX graph of {model_file} "
                                           f"(graph {kind}s: {', '.join(sorted(in_graph)) or 'none'})")
                continue
            onnx_type = vi.type.tensor_type.elem_type
            expected = ONNX_TO_CONFIG.get(onnx_type)
            if t.data_type != mc.TYPE_INVALID and expected != mc.DataType.Name(t.data_type):
                check.error(f"{key}.data_type", f"{kind} '{t.name}' is {mc.DataType.Name(t.data_type)} in the config "
                                                f"but {onnx_type_name(onnx_type)} in the ONNX graph "
                                                f"(use {expected or 'a supported type'})")
            _check_dims(config, t, key, kind, _onnx_dims(vi), check)
    declared = {t.name for t in config.input}
    for name in graph_inputs:
        if name not in declared:
            check.error("input", f"ONNX graph input '{name}' is not declared in the config")


def _check_dims(config, tensor, key: str, kind: str, onnx_dims: list[int], check: _Checker) -> None:
    dims = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
    batched = config.max_batch_size > 0
    full = ([-1] + dims) if batched else dims
    shown = f"[{', '.join(map(str, full))}]"
    if len(full) != len(onnx_dims):
        check.error(f"{key}.dims", f"{kind} '{tensor.name}' has {len(full)} dimensions {shown}"
                                   f"{' (batch dimension added by max_batch_size)' if batched else ''} "
                                   f"but {len(onnx_dims)} in the ONNX graph {onnx_dims}")
        return
    if batched and onnx_dims[0] != -1:
        check.error("max_batch_size", f"max_batch_size > 0 needs a variable first dimension in the ONNX graph, "
                                      f"but {kind} '{tensor.name}' has {onnx_dims}")
    offset = 1 if batched else 0
    for j, (want, have) in enumerate(zip(full[offset:], onnx_dims[offset:])):
        if have != -1 and want != -1 and want != have:
            check.error(f"{key}.dims[{j}]", f"{kind} '{tensor.name}' dimension {j} is {want} in the config "
                                            f"but {have} in the ONNX graph {onnx_dims}")
