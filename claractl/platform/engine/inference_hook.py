"""How the API and the engine make sure a model is loaded, without knowing who serves it.

- The embedded inference component (claractl.platform.inference) offers `load_model(name)`,
  `unload_model(name)` and optionally `is_model_ready(name) -> bool`: the hook calls those.
- With an external Triton (`config.inference.url`), the hook uses Triton's repository API
  through tritonclient (explicit model control).
- Otherwise there is nobody to load models: `ModelLoadError` with a message that says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlparse

from claractl.platform.config import PlatformConfig


class ModelLoadError(RuntimeError):
    pass


def _host(h: str) -> str:
    return "127.0.0.1" if h in ("0.0.0.0", "::", "") else h


def triton_uris(config: PlatformConfig) -> dict[str, str]:
    """host:port of the inference service for operators (HTTP, gRPC and the legacy TRTIS name)."""
    inf = config.inference
    if inf.url:
        parsed = urlparse(inf.url if "://" in inf.url else f"http://{inf.url}")
        host = parsed.hostname or "127.0.0.1"
        http = f"{host}:{parsed.port or inf.http_port}"
        grpc = f"{host}:{inf.grpc_port}"
    else:
        http = f"{_host(inf.host)}:{inf.http_port}"
        grpc = f"{_host(inf.host)}:{inf.grpc_port}"
    return {"NVIDIA_TRITON_HTTPURI": http, "NVIDIA_TRITON_GRPCURI": grpc, "NVIDIA_CLARA_TRTISURI": http}


# A Triton that just became ready behind a Kubernetes Service may refuse connections for a
# moment while kube-proxy programs its endpoints: connection errors are retried this long.
CONNECT_RETRY_SECONDS = 30.0


def _retrying(call: Callable[[], object], seconds: float = CONNECT_RETRY_SECONDS) -> object:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except OSError:                 # refused / reset / name not resolvable yet
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


class InferenceHook:
    def __init__(self, config: PlatformConfig, component: Callable[[], object | None] = lambda: None) -> None:
        self.config = config
        self._component = component

    def _triton(self):
        import tritonclient.http as httpclient
        return httpclient.InferenceServerClient(triton_uris(self.config)["NVIDIA_TRITON_HTTPURI"], network_timeout=120)

    def available(self) -> bool:
        return self._component() is not None or bool(self.config.inference.url)

    def load(self, name: str) -> None:
        comp = self._component()
        try:
            if comp is not None and hasattr(comp, "load_model"):
                comp.load_model(name)
            elif self.config.inference.url:
                _retrying(lambda: self._triton().load_model(name))
            else:
                raise ModelLoadError(f"model {name!r} cannot be loaded: the inference service is not running")
        except ModelLoadError:
            raise
        except Exception as exc:  # the service's own error text is the useful part
            raise ModelLoadError(f"model {name!r} failed to load: {exc}") from exc

    def unload(self, name: str) -> None:
        comp = self._component()
        try:
            if comp is not None and hasattr(comp, "unload_model"):
                comp.unload_model(name)
            elif self.config.inference.url:
                self._triton().unload_model(name)
        except Exception as exc:
            raise ModelLoadError(f"model {name!r} failed to unload: {exc}") from exc

    def is_ready(self, name: str) -> bool:
        comp = self._component()
        try:
            if comp is not None and hasattr(comp, "is_model_ready"):
                return bool(comp.is_model_ready(name))
            if comp is None and self.config.inference.url:
                return bool(self._triton().is_model_ready(name))
        except Exception:
            return False
        return False

    def ensure_loaded(self, name: str) -> None:
        if not self.is_ready(name):
            self.load(name)
