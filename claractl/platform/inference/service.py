"""The inference service as a platform component: Triton HTTP + gRPC over one model registry."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import uvicorn

from claractl.platform.config import PlatformConfig
from claractl.platform.inference.errors import InferenceError
from claractl.platform.inference.grpc_server import create_grpc_server
from claractl.platform.inference.http_server import create_app
from claractl.platform.inference.runtime import ModelRegistry

log = logging.getLogger(__name__)


class InferenceServiceError(RuntimeError):
    pass


class InferenceService:
    """`start()` binds HTTP (`config.inference.http_port`) and gRPC (`grpc_port`) on
    `config.inference.host`, serving `config.models_dir` with explicit model control.
    `store` (optional) gets each model's LOADED/UNLOADED/FAILED state; on start, models the
    store marks LOADED are loaded again."""

    def __init__(self, config: PlatformConfig, store=None, repository: str | Path | None = None) -> None:
        self.config = config
        self.store = store
        self.repository = Path(repository) if repository else config.models_dir
        self.registry = ModelRegistry(self.repository)
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._http: uvicorn.Server | None = None
        self._http_thread: threading.Thread | None = None
        self._http_error: BaseException | None = None
        self._grpc = None
        self._ready = False

    # --- component interface ---------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        settings = self.config.inference
        self.repository.mkdir(parents=True, exist_ok=True)
        try:
            self._grpc, self.grpc_port = create_grpc_server(
                self.registry, f"{_grpc_host(settings.host)}:{settings.grpc_port}", lambda: self._ready)
            self._start_http(settings.host, settings.http_port, timeout)
        except OSError as e:
            self.stop()
            raise InferenceServiceError(str(e)) from None
        except BaseException:
            self.stop()
            raise
        self._restore_loaded_models()
        self._ready = True
        log.info("inference service: HTTP %s:%s gRPC %s:%s, repository %s",
                 settings.host, self.http_port, settings.host, self.grpc_port, self.repository)

    def stop(self) -> None:
        self._ready = False
        if self._http is not None:
            self._http.should_exit = True
        if self._http_thread is not None:
            self._http_thread.join(timeout=10)
        if self._grpc is not None:
            self._grpc.stop(grace=2).wait(5)
        self._http = self._http_thread = self._grpc = None

    def status(self) -> dict:
        running = self._ready and self._http_thread is not None and self._http_thread.is_alive()
        host = self.config.inference.host
        return {
            "state": "running" if running else "stopped",
            "http": f"{host}:{self.http_port}" if running else None,
            "grpc": f"{host}:{self.grpc_port}" if running else None,
            "repository": str(self.repository),
            "models": {row["name"]: row["state"] for row in self.registry.index()},
        }

    # --- model control (the platform API's model upload calls these) -----------------------
    def load_model(self, name: str) -> None:
        try:
            loaded = self.registry.load(name)
        except InferenceError as e:
            # A failed reload leaves the previous versions serving: the row says so, with the reason.
            self._record(name, "LOADED" if self.registry.is_ready(name) else "FAILED", e.message)
            raise
        self._record(name, "LOADED", None, versions=loaded.info.versions)

    def is_model_ready(self, name: str) -> bool:
        return self.registry.is_ready(name)

    def unload_model(self, name: str) -> None:
        self.registry.unload(name)
        self._record(name, "UNLOADED", None)

    # --- helpers ----------------------------------------------------------------------------
    def _start_http(self, host: str, port: int, timeout: float) -> None:
        app = create_app(self.registry, lambda: self._ready)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                loop="uvloop", http="httptools", lifespan="off", timeout_keep_alive=30)
        self._http = uvicorn.Server(config)

        def run() -> None:
            try:
                self._http.run()     # off the main thread uvicorn leaves signals alone
            except BaseException as e:  # noqa: BLE001 - uvicorn exits via SystemExit on bind errors
                self._http_error = e

        self._http_thread = threading.Thread(target=run, name="triton-http", daemon=True)
        self._http_thread.start()
        deadline = time.monotonic() + timeout
        while not self._http.started:
            if not self._http_thread.is_alive() or time.monotonic() > deadline:
                raise InferenceServiceError(f"inference HTTP server could not listen on {host}:{port}"
                                            f"{' (port in use?)' if self._http_error else ''}")
            time.sleep(0.01)
        self.http_port = self._http.servers[0].sockets[0].getsockname()[1]

    def _record(self, name: str, state: str, message: str | None, versions: list[int] | None = None) -> None:
        if self.store is None:
            return
        from claractl.platform.store.models import Model

        with self.store.session() as s:
            row = s.get(Model, name)
            if row is not None:              # the API creates the row on upload; we only track state
                row.state, row.message = state, message
                if versions is not None:
                    row.versions = versions

    def _restore_loaded_models(self) -> None:
        if self.store is None:
            return
        from sqlalchemy import select

        from claractl.platform.store.models import Model

        with self.store.session() as s:
            names = list(s.scalars(select(Model.name).where(Model.state == "LOADED")))
        for name in names:
            try:
                self.load_model(name)
            except InferenceError as e:
                log.warning("model %s could not be loaded again: %s", name, e.message)


def _grpc_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
