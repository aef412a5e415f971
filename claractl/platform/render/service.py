"""The render service: dashboard + viewer back end and the `renderserver` export agent.

    service = RenderService(config, store)
    api_app.include_router(service.router)     # UI at /ui/, JSON at /api/v1/render/…
    service.start()                            # agent; also serves the UI on config.render.port

The platform server includes `router` in the API app, so the dashboard is on the API port too.
`start()` also listens on `config.render.port` (the port the render chart's Service targets on
Kubernetes) unless it is 0 or the API port.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import FastAPI

from claractl.platform.config import PlatformConfig
from claractl.platform.render.agent import RenderServerAgent
from claractl.platform.render.events import ChangeFeed
from claractl.platform.render.routes import DIST, build_router
from claractl.platform.render.volumes import VolumeFinder
from claractl.platform.store import Store

log = logging.getLogger("claractl.render")


class _ThreadedUvicorn:
    """Lazily built uvicorn.Server without signal handlers (it runs in a thread)."""

    @staticmethod
    def build(app: FastAPI, host: str, port: int):
        import uvicorn

        class Server(uvicorn.Server):
            def install_signal_handlers(self) -> None:
                pass

        return Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                     access_log=False, lifespan="off"))


def create_app(service: "RenderService") -> FastAPI:
    """A FastAPI app with only the render routes (own port, tests)."""
    app = FastAPI(title="claractl render", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(service.router)
    return app


class RenderService:
    # Routes carry their full paths (/ui/…, /api/v1/render/…): mount at the root of the API app.
    router_prefix = ""

    def __init__(self, config: PlatformConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.finder = VolumeFinder(config.payloads_dir, config.root / "render")
        self.feed = ChangeFeed(store.session)
        self.agent = RenderServerAgent(store, self.finder)
        self.router = build_router(self)
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def own_port(self) -> int | None:
        port = self.config.render.port
        return port if port and port != self.config.api.port else None

    def start(self, timeout: float = 15.0) -> None:
        self.agent.start()
        if self.own_port and self._thread is None:
            host = self.config.api.host
            self._server = _ThreadedUvicorn.build(create_app(self), host, self.own_port)
            self._thread = threading.Thread(target=self._server.run, name="render-http", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + timeout
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the render service could not listen on {host}:{self.own_port} "
                                       "(port in use? set services.render.port)")
                time.sleep(0.02)
            log.info("dashboard on http://%s:%d/ui/", host, self.own_port)

    def stop(self) -> None:
        self.agent.stop()
        if self._server is not None:
            self._server.should_exit = True
            if self._thread:
                self._thread.join(timeout=5)
            self._server, self._thread = None, None

    def status(self) -> dict[str, Any]:
        serving = bool(self._server and getattr(self._server, "started", False))
        return {
            "ui_built": (DIST / "index.html").is_file(),
            "agent": "running" if self.agent.running else "stopped",
            "published_tasks": self.agent.published,
            "last_error": self.agent.last_error,
            "port": self.own_port if serving else None,
            "healthy": (DIST / "index.html").is_file() and self.agent.running,
            # Ready = the agent publishes and the dashboard port answers; a missing front-end build
            # shows as healthy=false but does not hold back the platform (pipelines still run).
            "ready": self.agent.running and (serving or self.own_port is None),
        }
