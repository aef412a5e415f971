"""A model directory's `config.pbtxt`: Triton's ModelConfig in protobuf text format, parsed with
protobuf's own text_format into the ModelConfig message tritonclient ships.

One parser for `validate` (problems as config.pbtxt:LINE:COL) and `plan` (the config summary it
compares with the platform's). tritonclient keeps the generated message module inside
`tritonclient.grpc`, whose package imports grpc and numpy (~0.2 s); the module itself needs only
protobuf, so it is loaded from its file (`model_config_pb2()`), under its own name, so a later
`import tritonclient.grpc` finds and reuses it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from claractl.project.model import Diagnostic, Location, ProjectError

CONFIG_FILE = "config.pbtxt"
_MODULE = "tritonclient.grpc.model_config_pb2"


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
    """The ModelConfig message of `text`; ProjectError naming file:LINE:COL when it does not parse."""
    from google.protobuf import text_format

    config = model_config_pb2().ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        message = re.sub(r"^\d+:\d+ : ", "", str(exc))
        raise ProjectError([Diagnostic(Location(file, exc.GetLine() or 1, exc.GetColumn() or 1), "", message)]) from None
    return config


def config_dict(config: Any) -> dict[str, Any]:
    """The message as Triton prints it in JSON (proto field names)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(config, preserving_proto_field_name=True)
