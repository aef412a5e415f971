"""A Triton model directory: its `config.pbtxt` (Triton's ModelConfig in protobuf text format) and
the folders and files it names, checked without the platform.

One code for `validate`, `plan` (the config summary it compares) and the platform's model upload
(claractl.platform.inference.repository adds the check against the ONNX graph, which needs ONNX):
`parse_config_text` and `check_model_dir` collect every problem as config.pbtxt:LINE:COL: key.

tritonclient keeps the generated ModelConfig module inside `tritonclient.grpc`, whose package
imports grpc and numpy (~0.2 s); the module itself needs only protobuf, so `model_config_pb2()`
loads it from its file, under its own name, and a later `import tritonclient.grpc` reuses it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from claractl.project.model import Diagnostic, Location, ProjectError
from claractl.project.pbtxt_locations import FieldLocations

CONFIG_FILE = "config.pbtxt"
ONNX_PLATFORM = "onnxruntime_onnx"
ONNX_BACKEND = "onnxruntime"
_MODULE = "tritonclient.grpc.model_config_pb2"

# Default model file per platform/backend, as Triton names them.
DEFAULT_FILES = {
    "onnxruntime_onnx": "model.onnx", "onnxruntime": "model.onnx",
    "tensorrt_plan": "model.plan", "tensorrt": "model.plan",
    "pytorch_libtorch": "model.pt", "pytorch": "model.pt",
    "tensorflow_savedmodel": "model.savedmodel", "tensorflow_graphdef": "model.graphdef",
    "openvino": "model.xml", "python": "model.py", "fil": "xgboost.model",
}
PLATFORM_BACKEND = {
    "onnxruntime_onnx": "onnxruntime", "tensorrt_plan": "tensorrt", "pytorch_libtorch": "pytorch",
    "tensorflow_savedmodel": "tensorflow", "tensorflow_graphdef": "tensorflow",
}


class ModelConfigError(ProjectError):
    """A model directory is invalid; `diagnostics` lists every problem found."""


def model_config_pb2() -> ModuleType:
    """tritonclient's generated `model_config_pb2` module, without importing `tritonclient.grpc`."""
    module = sys.modules.get(_MODULE)
    if module is not None:
        return module
    package = importlib.util.find_spec("tritonclient")
    if package is None or not package.submodule_search_locations:
        raise ImportError("tritonclient is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location(_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return module


def parse_config_text(text: str, file: str) -> Any:
    """The ModelConfig message of `text`; ModelConfigError naming file:LINE:COL when it does not parse."""
    from google.protobuf import text_format

    config = model_config_pb2().ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        message = re.sub(r"^\d+:\d+ : ", "", str(exc))
        raise ModelConfigError([Diagnostic(Location(file, exc.GetLine() or 1, exc.GetColumn() or 1), "", message)]) from None
    return config


def config_dict(config: Any) -> dict[str, Any]:
    """The message as Triton prints it in JSON (proto field names)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(config, preserving_proto_field_name=True)


class ModelChecker:
    """Collects diagnostics for one model directory, positioned in its config.pbtxt."""

    def __init__(self, model_dir: Path, text: str | None) -> None:
        self.dir = model_dir
        self.file = str(model_dir / CONFIG_FILE)
        self.where = FieldLocations(text) if text is not None else None
        self.diagnostics: list[Diagnostic] = []

    def error(self, key: str, message: str, file: str | None = None) -> None:
        line, col = self.where.find(key) if (self.where and key and file is None) else (1, 1)
        self.diagnostics.append(Diagnostic(Location(file or self.file, line, col), key, message))


@dataclass
class ModelCheck:
    """What `check_model_dir` found; `check.diagnostics` is empty when the directory is valid."""

    config: Any                                              # the ModelConfig message
    check: ModelChecker
    backend: str = ""                                        # "onnxruntime", "tensorrt", …
    available_versions: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)        # served under version_policy
    model_files: dict[int, Path] = field(default_factory=dict)


def check_model_dir(model_dir: Path, *, name: str | None = None, allow_unsupported_backend: bool = False,
                    config_override: Any = None) -> ModelCheck:
    """Parse config.pbtxt and check the directory against it: name, backend, tensors, labels,
    version folders and model files, symbolic links (the upload refuses them). Raises
    ModelConfigError when config.pbtxt is missing or does not parse; other problems are in
    `.check.diagnostics`. `name`: the model's name where it is served (default: the folder's)."""
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
    check = ModelChecker(model_dir, text)
    served_as = name or model_dir.name
    if not config.name:
        config.name = served_as                 # Triton fills an empty name from the folder
    elif config.name != served_as:
        where = "the model folder" if name is None else "the model's name in the project"
        check.error("name", f"name '{config.name}' does not match {where} '{served_as}'")
    result = ModelCheck(config, check)
    result.backend = _check_backend(config, check, allow_unsupported_backend)
    _check_tensors(config, check)
    _check_labels(config, check)
    _check_links(check)
    result.available_versions, result.versions, result.model_files = _check_versions(config, model_dir,
                                                                                      result.backend, check)
    return result


def _check_backend(config: Any, check: ModelChecker, allow_unsupported: bool) -> str:
    platform, backend = config.platform, config.backend
    if platform and backend and PLATFORM_BACKEND.get(platform, backend) != backend:
        check.error("backend", f"backend '{backend}' contradicts platform '{platform}'")
    resolved = backend or PLATFORM_BACKEND.get(platform, platform)
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


def _check_tensors(config: Any, check: ModelChecker) -> None:
    mc = model_config_pb2()
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


def _check_labels(config: Any, check: ModelChecker) -> None:
    for i, out in enumerate(config.output):
        if out.label_filename and not (check.dir / out.label_filename).is_file():
            check.error(f"output[{i}].label_filename",
                        f"label file '{out.label_filename}' not found in {check.dir}")


def _check_links(check: ModelChecker, limit: int = 10_000) -> None:
    """A model is uploaded as a tar of its files; the platform refuses links in it, so refuse them here."""
    seen = 0
    for top, dirs, files in os.walk(check.dir):        # does not descend into linked directories
        for entry in dirs + files:
            seen += 1
            path = Path(top) / entry
            if path.is_symlink():
                check.error("", f"{path.relative_to(check.dir)} is a symbolic link; a model directory is "
                                "uploaded as its files, and links are refused (copy the file instead)",
                            file=str(path))
        if seen > limit:
            return


def _check_versions(config: Any, model_dir: Path, backend: str, check: ModelChecker):
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
    filename = config.default_model_filename or DEFAULT_FILES.get(backend, DEFAULT_FILES.get(config.platform, ""))
    files: dict[int, Path] = {}
    for v in versions:
        f = model_dir / str(v) / filename
        if filename and f.exists():
            files[v] = f
        elif backend:
            check.error("default_model_filename" if config.default_model_filename else "",
                        f"version {v} has no model file '{filename or '?'}' ({f})")
    return available, versions, files
