"""Model repository: read and check one Triton model directory.

    <repository>/<model>/config.pbtxt       Triton's ModelConfig in protobuf text format
    <repository>/<model>/<version>/model.onnx   (or `default_model_filename`)
    <repository>/<model>/labels.txt         optional, named by an output's `label_filename`

`load_model_dir()` runs claractl.project.modelconfig.check_model_dir (config.pbtxt parsed into
`tritonclient.grpc.model_config_pb2.ModelConfig`, name, backend, tensors, labels, versions — what
`claractl validate` checks too) and adds the check of the config against the ONNX graph, then
raises every problem as a Diagnostic (file:line:col: key: message).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from tritonclient.grpc import model_config_pb2 as mc

from claractl.platform.inference.datatypes import ONNX_TO_CONFIG, onnx_type_name
from claractl.platform.store.digest import model_digest
from claractl.project.model import Diagnostic, Location
# The checks that need no ONNX live with the project (validate runs them too); re-exported here.
from claractl.project.modelconfig import (  # noqa: F401
    CONFIG_FILE, ONNX_BACKEND, ONNX_PLATFORM, ModelChecker, ModelConfigError, check_model_dir, parse_config_text,
)


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
def load_model_dir(
    path: str | os.PathLike[str],
    *,
    allow_unsupported_backend: bool = False,
    config_override: mc.ModelConfig | None = None,
) -> ModelInfo:
    """Parse and check a model directory. `allow_unsupported_backend` accepts backends only real
    Triton serves (the kubernetes target); their model files are checked to exist, not opened."""
    model_dir = Path(path)
    found = check_model_dir(model_dir, allow_unsupported_backend=allow_unsupported_backend,
                            config_override=config_override)
    config, check = found.config, found.check
    if found.backend == ONNX_BACKEND:
        for version in found.versions:
            if version in found.model_files:
                _check_against_onnx(config, found.model_files[version], check)
    if check.diagnostics:
        raise ModelConfigError(check.diagnostics)
    return ModelInfo(
        name=config.name, path=model_dir, config=config, backend=found.backend, versions=found.versions,
        available_versions=found.available_versions, model_files=found.model_files,
        labels=_read_labels(config, model_dir), digest=digest(model_dir),
    )


def _read_labels(config: mc.ModelConfig, model_dir: Path) -> dict[str, list[str]]:
    labels = {}
    for out in config.output:
        if out.label_filename:
            lines = (model_dir / out.label_filename).read_text(encoding="utf-8").splitlines()
            labels[out.name] = [line.strip() for line in lines if line.strip()]
    return labels


def _onnx_dims(value_info) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in value_info.type.tensor_type.shape.dim]


def _check_against_onnx(config: mc.ModelConfig, model_file: Path, check: ModelChecker) -> None:
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


def _check_dims(config, tensor, key: str, kind: str, onnx_dims: list[int], check: ModelChecker) -> None:
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
