"""Model repository and the embedded Triton-protocol inference service (DESIGN §7).

    info = load_model_dir("models/ct-organs")      # ModelInfo, or raises ModelConfigError
    digest("models/ct-organs")                     # "sha256:<hex>"
    svc = InferenceService(config, store); svc.start(); svc.load_model("ct-organs")
"""

from claractl.platform.inference.errors import InferenceError
from claractl.platform.inference.repository import (
    ModelConfigError,
    ModelInfo,
    config_from_json,
    config_to_json,
    digest,
    load_model_dir,
    parse_config_text,
)
from claractl.platform.inference.service import InferenceService, InferenceServiceError

__all__ = [
    "InferenceError", "InferenceService", "InferenceServiceError", "ModelConfigError", "ModelInfo",
    "config_from_json", "config_to_json", "digest", "load_model_dir", "parse_config_text",
]
