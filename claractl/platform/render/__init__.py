"""Dashboard + 3D viewer back end (UI under /ui/, JSON under /api/v1/render/) and the
`renderserver` export agent. See docs/dashboard.md."""

from claractl.platform.render.service import RenderService, create_app

__all__ = ["RenderService", "create_app"]
