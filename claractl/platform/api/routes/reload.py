"""POST /config/reload: apply a changed platform.json to the running process (Platform.reload)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error

router = APIRouter()


@router.post("/config/reload", tags=["platform"])
def reload_config(c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Re-read the settings file and restart only the components whose settings changed.

    `restart_required: true` (with `restart_required_for`) means the change needs a full process
    restart (API host/port, database); nothing was applied then."""
    if c.reload is None:
        raise api_error(409, "this API runs without a platform process to reload; restart it instead")
    try:
        return c.reload()
    except RuntimeError as exc:      # PlatformError: bad settings file, a component failed to start
        raise api_error(409, str(exc)) from None
