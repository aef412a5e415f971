"""The inference service seen through tritonclient: endpoint from the Clara environment, model
config (names, dims, parameters, labels) and a `predict(patch)` callable.

Works unchanged against the embedded service and NVIDIA Triton: only the KServe v2 / Triton
protocol is used. Labels come from the config parameter `labels` (comma-separated, in class
order), because Triton's protocol does not serve the contents of `label_filename`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import OperatorError

HTTP_ENV, GRPC_ENV, LEGACY_ENV = "NVIDIA_TRITON_HTTPURI", "NVIDIA_TRITON_GRPCURI", "NVIDIA_CLARA_TRTISURI"


def _strip_scheme(uri: str) -> str:
    return uri.split("://", 1)[1] if "://" in uri else uri


def resolve_endpoint(protocol: str | None, env=None) -> tuple[str, str]:
    """(protocol, host:port). `protocol` None = HTTP when its variable is set, else gRPC."""
    env = os.environ if env is None else env
    http = env.get(HTTP_ENV) or env.get(LEGACY_ENV)
    grpc = env.get(GRPC_ENV)
    if protocol is None:
        protocol = "http" if http or not grpc else "grpc"
    if protocol == "http":
        if not http:
            raise OperatorError(f"no inference service: set {HTTP_ENV} (host:port)")
        return "http", _strip_scheme(http).rstrip("/")
    if protocol == "grpc":
        if not grpc:
            raise OperatorError(f"no inference service: set {GRPC_ENV} (host:port)")
        return "grpc", _strip_scheme(grpc).rstrip("/")
    raise OperatorError(f"unknown protocol {protocol!r} (use http or grpc)")


@dataclass
class ModelInfo:
    name: str
    input_name: str
    input_dims: list[int]
    output_name: str
    output_dims: list[int]
    parameters: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


def parse_config(name: str, config: dict) -> ModelInfo:
    """Triton's model config as JSON (HTTP and gRPC-as-JSON shapes are the same)."""
    try:
        inp, out = config["input"][0], config["output"][0]
        params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        labels = [s.strip() for s in params.get("labels", "").split(",") if s.strip()]
        return ModelInfo(
            name=name,
            input_name=inp["name"], input_dims=[int(d) for d in inp["dims"]],
            output_name=out["name"], output_dims=[int(d) for d in out["dims"]],
            parameters=params, labels=labels,
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise OperatorError(f"model {name!r}: config from the inference service lacks input/output ({exc})") from exc


class TritonModel:
    """One model on a Triton-protocol server. `predict` is what the sliding window calls."""

    def __init__(self, model: str, protocol: str | None = None, env=None):
        self.protocol, self.url = resolve_endpoint(protocol, env)
        self.model = model
        try:
            if self.protocol == "http":
                import tritonclient.http as client

                self._client = client.InferenceServerClient(self.url, network_timeout=600.0, connection_timeout=10.0)
            else:
                import tritonclient.grpc as client

                self._client = client.InferenceServerClient(self.url)
            self._mod = client
            ready = self._client.is_model_ready(model)
        except Exception as exc:
            raise OperatorError(f"inference service {self.protocol}://{self.url} unreachable: {exc}") from exc
        if not ready:
            raise OperatorError(f"model {model!r} is not ready on {self.protocol}://{self.url}")
        self.info = parse_config(model, self._fetch_config())

    def _fetch_config(self) -> dict:
        try:
            if self.protocol == "http":
                return self._client.get_model_config(self.model)
            return self._client.get_model_config(self.model, as_json=True)["config"]
        except Exception as exc:
            raise OperatorError(f"model {self.model!r}: cannot read its config from {self.url}: {exc}") from exc

    def predict(self, x: np.ndarray) -> np.ndarray:
        m = self._mod
        inp = m.InferInput(self.info.input_name, list(x.shape), "FP32")
        try:
            if self.protocol == "http":
                inp.set_data_from_numpy(x, binary_data=True)
                outputs = [m.InferRequestedOutput(self.info.output_name, binary_data=True)]
            else:
                inp.set_data_from_numpy(x)
                outputs = [m.InferRequestedOutput(self.info.output_name)]
            result = self._client.infer(self.model, [inp], outputs=outputs)
        except Exception as exc:
            raise OperatorError(f"inference of model {self.model!r} on {self.url} failed: {exc}") from exc
        return result.as_numpy(self.info.output_name)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass
