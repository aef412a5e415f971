"""What every route needs: the operations' Context (config, store, engine, inference hook, components)."""

from __future__ import annotations

from fastapi import Request

from claractl.platform.operations import Context

ApiContext = Context        # the HTTP API's name for it (routes: `c: ApiContext = Depends(ctx)`)


def ctx(request: Request) -> Context:
    return request.app.state.ctx
