"""A short summary of a Triton model's config, shown in plans and compared across the target.

Both sides come from Triton's own ModelConfig message: the project's `config.pbtxt` is parsed
by claractl.project.modelconfig (what validate uses too); the platform reports the same message as JSON (MessageToDict with
proto field names). `summary()` reduces either to the same small dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from claractl.plan.errors import PlanError
from claractl.project.model import ProjectError
from claractl.project.modelconfig import CONFIG_FILE, config_dict, parse_config_text


def summary(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": config.get("backend") or config.get("platform") or "",
        "max_batch_size": int(config.get("max_batch_size", 0) or 0),
        "inputs": [i.get("name", "") for i in config.get("input", [])],
        "outputs": [o.get("name", "") for o in config.get("output", [])],
    }


def summary_of_dir(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / CONFIG_FILE
    try:
        message = parse_config_text(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path}: cannot read the model config: {exc}") from None
    except ProjectError as exc:
        raise PlanError(f"cannot read the model config: {exc}") from None
    return summary(config_dict(message))
