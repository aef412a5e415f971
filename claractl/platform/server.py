"""The platform composition: one store, the engine, the optional components, and the HTTP API.

Components are objects with `start()`, `stop()`, `status() -> dict`, built from
`(config, store)`. Optional ones are imported lazily by name, so the process works while a
component is not installed ("component not installed" in the log) or disabled in the config.
A component with a `router` attribute gets it mounted in the API (see claractl.platform.api).

`Platform.reload()` (POST /api/v1/config/reload) applies a changed platform.json to the running
process: only the components whose settings changed are stopped and started again, the engine
takes new capacity and timeouts in place, and the API app is rebuilt and swapped under uvicorn.
API address and database changes need a full restart; reload says so and changes nothing.

Running it as an OS process (`serve`, background start/stop/status, pid and log files) is
claractl.platform.process.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import threading
import time
from typing import Any

import uvicorn
from sqlalchemy.exc import OperationalError

from claractl.platform.api import ApiContext, create_app
from claractl.platform.api.auth import ensure_token
from claractl.platform.config import PlatformConfig, load_config
from claractl.platform.engine import Engine
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.errors import PlatformError
from claractl.platform.reload import DISPLAY, START_ORDER, reload_effect
from claractl.platform.store import Store

log = logging.getLogger("claractl.platform")

# name → (import path, is it enabled for this config?)
OPTIONAL_COMPONENTS: dict[str, tuple[str, Any]] = {
    "inference": ("claractl.platform.inference:InferenceService",
                  lambda c: c.inference.enabled and not c.inference.url),
    "dicom": ("claractl.platform.dicom:DicomAdapter", lambda c: c.dicom.enabled),
    "render": ("claractl.platform.render:RenderService", lambda c: c.render.enabled),
    "clara-api": ("claractl.platform.clara_api:ClaraApiServer", lambda c: c.api.grpc_port is not None),
}


DATABASE_WAIT = 100.0      # s a starting platform waits for its database server (under the pod's startup probe)

# Roles a process can take (`platform serve --roles`); one process takes them all by default.
# With several processes (high availability on kubernetes) each runs its role's components.
ROLES = ("api", "engine", "dicom")
COMPONENT_ROLES = {"inference": "api", "dicom": "dicom", "render": "api", "clara-api": "api"}


def _import(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers when it runs in a thread (tests, embedding)."""

    def install_signal_handlers(self) -> None:
        pass


class _SwappableApp:
    """The ASGI app uvicorn serves; reload swaps the FastAPI app behind it (new connections and
    requests see the new one, requests in flight finish on the old one)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


class Platform:
    def __init__(self, config: PlatformConfig, config_file: str | None = None,
                 on_reload: Any = None, roles: tuple[str, ...] = ROLES) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise PlatformError(f"unknown role(s) {', '.join(sorted(unknown)) or '(none given)'}; "
                                f"roles are {', '.join(ROLES)}")
        self.roles = tuple(roles)
        self.config = config
        self.config_file = config_file          # re-read by reload(); None = <state-dir>/platform.json
        self.on_reload = on_reload              # called with the new config after a reload
        self.store = Store(config.database_url)
        self.components: dict[str, Any] = {}
        self.hook = InferenceHook(config, lambda: self.components.get("inference"))
        self.engine: Engine | None = None
        self.token: str | None = None
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._asgi: _SwappableApp | None = None
        self._reload_lock = threading.Lock()

    # -- components ----------------------------------------------------------------------------
    def start_components(self) -> None:
        cfg = self.config
        for d in (cfg.payloads_dir, cfg.models_dir, cfg.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        found = self._open_store()
        log.info("store %s ready (schema was %s)", _redact_url(self.store.url), found or "new")
        try:
            for name in ("inference",):
                self._start_optional(name)
            if "engine" in self.roles:
                self._start_engine_role()
            for name in ("dicom", "render", "clara-api"):
                self._start_optional(name)
        except BaseException:
            self.stop_components()
            raise

    def _open_store(self, wait: float = DATABASE_WAIT) -> int:
        """Create or upgrade the schema. A database server may still be starting (its pod beside
        ours, or restarting): wait for it up to `wait` s, saying so, rather than exit."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return self.store.create_all()
            except OperationalError as exc:
                if self.store.url.startswith("sqlite") or time.monotonic() > deadline:
                    raise
                log.warning("database %s not reachable yet (%s); retrying", _redact_url(self.store.url),
                            str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__)
                time.sleep(2)

    def _leader_components(self, adopt: bool) -> dict[str, Any]:
        """The engine; where processes share the state (high availability) the DICOM export agent
        runs beside it rather than in every DICOM replica (one agent, see dicom/adapter.py)."""
        made: dict[str, Any] = {"engine": Engine(self.config, self.store, hook=self.hook, adopt=adopt)}
        if self.config.cluster.shared_state and self.config.dicom.enabled:
            from claractl.platform.dicom.export import DicomExportAgent
            made["dicom-export"] = DicomExportAgent(self.config, self.store)
        if self.config.audit.syslog:       # one sender of the audit trail per platform
            from claractl.platform.audit.syslog import SyslogForwarder
            made["audit-syslog"] = SyslogForwarder(self.config, self.store)
        return made

    def _start_engine_role(self) -> None:
        """With leader election the engine's components run only on the Lease holder (leader.py)."""
        if self.config.cluster.leader_election:
            from claractl.platform.leader import LeaderElected
            made = {"engine": LeaderElected(self.config, lambda: self._leader_components(adopt=True))}
        else:
            made = self._leader_components(adopt=False)
        for name, comp in made.items():
            comp.start()
            self.components[name] = comp
        self.engine = made["engine"]

    def _start_optional(self, name: str, config: PlatformConfig | None = None) -> None:
        config = config or self.config
        spec, enabled = OPTIONAL_COMPONENTS[name]
        if COMPONENT_ROLES[name] not in self.roles:
            return
        if not enabled(config):
            log.info("component %s disabled", name)
            return
        try:
            cls = _import(spec)
        except (ImportError, AttributeError):
            log.warning("component %s not installed (%s)", name, spec)
            return
        comp = cls(config, self.store)
        bind = getattr(comp, "bind", None)     # components that serve API calls get the operations' Context
        if bind is not None:
            bind(self.context(config))
        try:
            comp.start()
        except Exception as exc:
            raise PlatformError(f"component {name} failed to start: {exc}") from exc
        self.components[name] = comp
        log.info("component %s started", name)

    def _stop_optional(self, name: str) -> None:
        comp = self.components.pop(name, None)
        if comp is None:
            return
        try:
            comp.stop()
            log.info("component %s stopped", name)
        except Exception:
            log.exception("component %s did not stop cleanly", name)

    def _order_components(self) -> None:
        """Keep start order after a restart (stop_components stops in reverse)."""
        self.components = {n: self.components[n] for n in START_ORDER if n in self.components} | \
                          {n: c for n, c in self.components.items() if n not in START_ORDER}

    # -- reload --------------------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Apply the settings file to the running process; restart only what changed.

        Returns {changed, restart_required, restart_required_for, restarted, reconfigured}. On a
        component that fails to start with the new settings, the previous components and settings
        are put back and PlatformError says why."""
        with self._reload_lock:
            try:
                new = load_config(self.config.root, self.config_file)
            except (ValueError, TypeError, OSError) as exc:   # platform.json unreadable or unknown keys
                raise PlatformError(f"cannot read the platform settings: {exc}") from None
            new.cluster.replica = self.config.cluster.replica      # given on the command line
            effect = reload_effect(self.config, new)
            out: dict[str, Any] = {"changed": effect.changed, "restart_required": bool(effect.restart_process),
                                   "restart_required_for": effect.restart_process, "restarted": [],
                                   "reconfigured": [], "summary": effect.describe() or "no changes"}
            if effect.restart_process or effect.nothing:
                if effect.restart_process:
                    log.info("reload: %s need a full restart; nothing applied", ", ".join(effect.restart_process))
                return out
            old = self.config
            done: list[str] = []
            try:
                for name in reversed(effect.components):
                    self._stop_optional(name)
                for name in effect.components:
                    done.append(name)
                    self._start_optional(name, new)
            except PlatformError as exc:
                for name in reversed(done):
                    self._stop_optional(name)
                for name in effect.components:
                    try:
                        self._start_optional(name, old)
                    except PlatformError as again:
                        log.error("reload: %s did not come back with the previous settings: %s", name, again)
                self._order_components()
                if self._asgi is not None:          # routes and /health/ready see the new objects
                    self._asgi.app = self.app()
                raise PlatformError(f"{exc}; kept the previous settings") from None
            self._order_components()
            self.config = new
            self.hook.config = new
            if self.engine is not None and hasattr(self.engine, "reconfigure"):   # not on a leader-elected one
                self.engine.reconfigure(new)
            if self._asgi is not None:
                self._asgi.app = self.app()
            if self.on_reload is not None:
                self.on_reload(new)
            out["restarted"] = [DISPLAY[n] for n in effect.components]
            out["reconfigured"] = (["engine"] if effect.engine else []) + ["api"]
            log.info("reload: %s", effect.describe())
            return out

    def stop_components(self) -> None:
        for name in reversed(list(self.components)):
            try:
                self.components.pop(name).stop()
                log.info("component %s stopped", name)
            except Exception:
                log.exception("component %s did not stop cleanly", name)
        from claractl.platform.audit import trail
        trail.flush(self.store)          # audit events still queued (associations, API writes)
        self.store.dispose()

    # -- API -----------------------------------------------------------------------------------
    def context(self, config: PlatformConfig | None = None) -> ApiContext:
        """What API calls (HTTP and Clara gRPC) work with: claractl.platform.operations.Context."""
        return ApiContext(config or self.config, self.store, self.hook, self.engine, dict(self.components),
                          reload=self.reload, stop_platform=self.request_exit)

    def app(self):
        self.token = ensure_token(self.config)
        return create_app(self.context(), token=self.token)

    def request_exit(self) -> None:
        """End serving (Clara.Stop): serve_forever then stops every component, as on SIGTERM."""
        if self.server is not None:
            self.server.should_exit = True

    def _uvicorn(self, threaded: bool) -> uvicorn.Server:
        self._asgi = _SwappableApp(self.app())
        cfg = uvicorn.Config(self._asgi, host=self.config.api.host, port=self.config.api.port, interface="asgi3",
                             log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=10)
        return _QuietUvicorn(cfg) if threaded else uvicorn.Server(cfg)

    def serve_forever(self) -> None:
        """Foreground: start everything, serve until SIGTERM/SIGINT, stop everything."""
        self.start_components()
        try:
            # Our own handlers: uvicorn's re-raise the signal after its shutdown, which would end
            # the process before the components (and running operators) are stopped.
            self.server = self._uvicorn(threaded=True)

            def request_exit(signum, _frame) -> None:
                log.info("signal %s: shutting down", signal.Signals(signum).name)
                self.server.should_exit = True

            signal.signal(signal.SIGTERM, request_exit)
            signal.signal(signal.SIGINT, request_exit)
            log.info("platform API on %s", self.config.api_url)
            asyncio.run(self.server.serve())
            if not self.server.started:
                raise PlatformError(f"the API could not listen on {self.config.api.host}:{self.config.api.port}")
        finally:
            self.stop_components()

    def start(self, timeout: float = 30.0) -> None:
        """In a thread (tests and embedding): returns when the API accepts requests."""
        self.start_components()
        self.server = self._uvicorn(threaded=True)
        self._thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise PlatformError(f"the API did not start on {self.config.api.host}:{self.config.api.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self.stop_components()


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(database)"
