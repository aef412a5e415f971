"""Inference errors with the kind Triton gives them, so HTTP and gRPC map them the same way."""

from __future__ import annotations

import grpc

# kind → (HTTP status, gRPC code). Triton answers 400 with {"error": ...} for request errors,
# NOT_FOUND / INVALID_ARGUMENT / UNAVAILABLE on gRPC.
_MAPPING = {
    "not_found": (400, grpc.StatusCode.NOT_FOUND),
    "invalid_arg": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "unavailable": (400, grpc.StatusCode.UNAVAILABLE),
    "unsupported": (400, grpc.StatusCode.UNIMPLEMENTED),
    "internal": (500, grpc.StatusCode.INTERNAL),
}


class InferenceError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        assert kind in _MAPPING, kind
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def http_status(self) -> int:
        return _MAPPING[self.kind][0]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _MAPPING[self.kind][1]


def not_found(message: str) -> InferenceError:
    return InferenceError("not_found", message)


def invalid(message: str) -> InferenceError:
    return InferenceError("invalid_arg", message)


def unavailable(message: str) -> InferenceError:
    return InferenceError("unavailable", message)
