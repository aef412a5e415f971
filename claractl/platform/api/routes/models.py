"""Models: PUT a tar.gz of a Triton model directory; the platform keeps it under
`<models_dir>/<name>/`, records its digest and parsed config, and asks the inference service to
(re)load it when one is running. The logic is claractl.platform.operations.models."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.schemas import ModelOut
from claractl.platform.operations import models as ops

router = APIRouter(tags=["models"])
NamePath = Path(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")


@router.get("/models", response_model=list[ModelOut])
def list_models(c: ApiContext = Depends(ctx)):
    return ops.list_models(c)


@router.get("/models/{name}", response_model=ModelOut)
def get_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    return ops.get_model(c, name)


@router.put("/models/{name}", response_model=ModelOut,
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def put_model(request: Request, response: Response, name: str = NamePath,
                    owner: str | None = Query(default=None, max_length=255), c: ApiContext = Depends(ctx)):
    with ops.upload_area(c) as work:
        archive = work / "model.archive"
        with open(archive, "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        model, created = await run_in_threadpool(ops.put_model, c, name, archive, owner)
    response.status_code = 201 if created else 200
    return model


@router.post("/models/{name}/load", response_model=ModelOut)
def load_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    return ops.load_model(c, name)


@router.post("/models/{name}/unload", response_model=ModelOut)
def unload_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    return ops.unload_model(c, name)


@router.delete("/models/{name}", status_code=204)
def delete_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    ops.delete_model(c, name)
    return Response(status_code=204)
