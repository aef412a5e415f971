"""Defaults of the project file's `target` and `services` (DESIGN §2), filled in after validation."""

from __future__ import annotations

import copy
from typing import Any

TARGET_DEFAULTS: dict[str, Any] = {
    "type": "local",
    "local": {"state-dir": ".clara"},
    "kubernetes": {"context": "", "namespace": "clara", "storage-class": ""},
}

SERVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "platform": {
        "api-host": "127.0.0.1", "api-port": 8765, "grpc-port": 50051, "workers": 2, "database": "sqlite",
        "job-timeout": 600, "payload-retention": 86400, "service-idle": 60,
    },
    "dicom-adapter": {
        "enabled": True, "host": "0.0.0.0", "port": 11112, "ae-title": "CLARA", "max-associations": 25,
        "reject-unknown-sources": True, "storage": {"watermark-percent": 85, "reserve-mb": 0, "spool-segment-mb": 64},
    },
    "triton": {
        "enabled": True, "image": "nvcr.io/nvidia/tritonserver:24.08-py3", "gpus": 0,
        "http-port": 8000, "grpc-port": 8001,
    },
    "render": {"enabled": True, "port": 8080},
}


def merge_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`values` over a deep copy of `defaults`; nested mappings merge key by key."""
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_defaults(value, merged[key])
        else:
            merged[key] = value
    return merged
