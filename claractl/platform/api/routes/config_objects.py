"""Configuration objects: pipelines, AE titles, sources, destinations (PUT creates or replaces)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import select

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.routes.common import not_found, row_dict
from claractl.platform.api.schemas import (
    AE_TITLE, NAME, AETitleIn, AETitleOut, DestinationIn, DestinationOut, PipelineIn, PipelineOut,
    SourceIn, SourceOut,
)
from claractl.platform.operations import pipelines as pipeline_ops
from claractl.platform.store.models import AETitle, Destination, Source, utcnow

router = APIRouter()
NamePath = Path(pattern=NAME, max_length=255)
AEPath = Path(pattern=AE_TITLE, max_length=16)


# -- pipelines (logic: claractl.platform.operations.pipelines, shared with the Clara API) ------------
@router.get("/pipelines", response_model=list[PipelineOut], tags=["pipelines"])
def list_pipelines(c: ApiContext = Depends(ctx)):
    return pipeline_ops.list_pipelines(c)


@router.get("/pipelines/{name}", response_model=PipelineOut, tags=["pipelines"])
def get_pipeline(name: str = NamePath, c: ApiContext = Depends(ctx)):
    return pipeline_ops.get_pipeline(c, name)


@router.put("/pipelines/{name}", response_model=PipelineOut, tags=["pipelines"])
def put_pipeline(body: PipelineIn, response: Response, name: str = NamePath, c: ApiContext = Depends(ctx)):
    export = [e.model_dump(by_alias=True, exclude_none=True) for e in body.export]
    pipeline, created = pipeline_ops.put_pipeline(c, name, body.definition_text, export, body.owner)
    if created:
        response.status_code = 201
    return pipeline


@router.delete("/pipelines/{name}", status_code=204, tags=["pipelines"])
def delete_pipeline(name: str = NamePath, c: ApiContext = Depends(ctx)):
    pipeline_ops.delete_pipeline(c, name)
    return Response(status_code=204)


def _simple_crud(kind: str, path: str, model, key: str, body_cls, out_cls, fields: list[str], key_path) -> None:
    """GET list, GET/PUT/DELETE one, for tables keyed by a name."""
    tag = [path.strip("/")]

    def list_all(c: ApiContext = Depends(ctx)):
        with c.store.session() as s:
            return [row_dict(r, fields) for r in s.scalars(select(model).order_by(getattr(model, key)))]

    def get_one(name: str = key_path, c: ApiContext = Depends(ctx)):
        with c.store.session() as s:
            row = s.get(model, name)
            if row is None:
                raise not_found(kind, name)
            return row_dict(row, fields)

    def put_one(body, response: Response, name: str = key_path, c: ApiContext = Depends(ctx)):
        with c.store.session() as s:
            row = s.get(model, name)
            if row is None:
                row = model(**{key: name})
                s.add(row)
                response.status_code = 201
            for f, v in body.model_dump().items():
                setattr(row, f, v)
            row.updated_at = utcnow()
            s.flush()
            return row_dict(row, fields)

    # Annotations are strings under `from __future__ import annotations`; give FastAPI the class.
    put_one.__annotations__["body"] = body_cls
    put_one.__annotations__["response"] = Response
    put_one.__annotations__["c"] = ApiContext

    def delete_one(name: str = key_path, c: ApiContext = Depends(ctx)):
        with c.store.session() as s:
            row = s.get(model, name)
            if row is None:
                raise not_found(kind, name)
            s.delete(row)
        return Response(status_code=204)

    router.add_api_route(path, list_all, methods=["GET"], response_model=list[out_cls], tags=tag,
                         name=f"list_{kind.replace(' ', '_')}s")
    router.add_api_route(f"{path}/{{name}}", get_one, methods=["GET"], response_model=out_cls, tags=tag,
                         name=f"get_{kind.replace(' ', '_')}")
    router.add_api_route(f"{path}/{{name}}", put_one, methods=["PUT"], response_model=out_cls, tags=tag,
                         name=f"put_{kind.replace(' ', '_')}", status_code=200)
    router.add_api_route(f"{path}/{{name}}", delete_one, methods=["DELETE"], status_code=204, tags=tag,
                         name=f"delete_{kind.replace(' ', '_')}")


_simple_crud("AE title", "/ae-titles", AETitle, "ae_title", AETitleIn, AETitleOut,
             ["ae_title", "pipelines", "group_by", "timeout", "priority", "owner", "created_at", "updated_at"], AEPath)
_simple_crud("source", "/sources", Source, "name", SourceIn, SourceOut,
             ["name", "ae_title", "host", "owner", "created_at", "updated_at"], NamePath)
_simple_crud("destination", "/destinations", Destination, "name", DestinationIn, DestinationOut,
             ["name", "ae_title", "host", "port", "tls", "owner", "created_at", "updated_at"], NamePath)


@router.get("/config", tags=["platform"])
def get_config(c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """The running PlatformConfig, token redacted."""
    return c.config.to_dict(redact=True)
