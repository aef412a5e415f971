"""The platform's HTTP API (FastAPI) under `/api/v1`; health and metrics at the root.

    app = create_app(ApiContext(config, store, hook, engine, components))

Component routers: a component object with a `router` attribute (a FastAPI `APIRouter`) gets it
mounted under `/api/v1` (e.g. the DICOM adapter's `/api/v1/dicom/status`); a component that
sets `router_prefix` (e.g. `""` for a dashboard at `/`) chooses its own mount point. Pass components in `ApiContext.components` (also used by
`/health/ready`: each component's `status()["ready"]`).
"""

from __future__ import annotations

from fastapi import FastAPI

from claractl import __version__
from claractl.platform.api import errors
from claractl.platform.api.audit_writes import AuditWritesMiddleware
from claractl.platform.api.auth import BearerTokenMiddleware, is_loopback
from claractl.platform.api.context import ApiContext
from claractl.platform.api.routes import (
    audit, config_objects, exports, health, jobs, locks, models, payloads, reload, utilization,
)

API_PREFIX = "/api/v1"

__all__ = ["create_app", "ApiContext", "API_PREFIX"]


def create_app(context: ApiContext, token: str | None = None) -> FastAPI:
    app = FastAPI(
        title="claractl platform API",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.ctx = context
    errors.install(app)
    required = not is_loopback(context.config.api.host)
    app.state.token = token if token is not None else context.config.api_token
    app.add_middleware(BearerTokenMiddleware, token=app.state.token, required=required)
    # Added last, so outermost: refused writes (401) are audited too.
    app.add_middleware(AuditWritesMiddleware, store=context.store, token=app.state.token, prefix=API_PREFIX)
    for module in (config_objects, reload, models, jobs, payloads, exports, locks, utilization, audit):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.router)
    for comp in context.components.values():
        router = getattr(comp, "router", None)
        if router is not None:
            app.include_router(router, prefix=getattr(comp, "router_prefix", API_PREFIX))
    return app
