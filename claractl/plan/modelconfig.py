"""A short summary of a Triton model's config, shown in plans and compared across the target.

Both sides come from Triton's own ModelConfig message: the project's `config.pbtxt` is parsed
with protobuf text_format; the platform reports the same message as JSON (MessageToDict with
proto field names). `summary()` reduces either to the same small dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claractl.plan.errors import PlanError


def summary(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": config.get("backend") or config.get("platform") or "",
        "max_batch_size": int(config.get("max_batch_size", 0) or 0),
        "inputs": [i.get("name", "") for i in config.get("input", [])],
        "outputs": [o.get("name", "") for o in config.get("output", [])],
    }


def summary_of_dir(model_dir: Path) -> dict[str, Any]:
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    path = Path(model_dir) / "config.pbtxt"
    try:
        message = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
        raise PlanError(f"{path}: cannot read the model config: {exc}") from None
    return summary(json_format.MessageToDict(message, preserving_proto_field_name=True))
