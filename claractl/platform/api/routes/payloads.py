"""Payloads: create, upload files (streamed, any size), list, download. Paths are relative to the
payload root (`input/…` for job input); anything leaving the payload is rejected."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error
from claractl.platform.api.routes.common import not_found, row_dict
from claractl.platform.api.schemas import FileOut, PayloadOut
from claractl.platform.store.models import Payload
from claractl.platform.store.payloads import (
    UnsafePath, list_files, new_payload, payload_dir, resolve_in, write_stream_atomically,
)

router = APIRouter(tags=["payloads"])
IdPath = Path(max_length=36)


def _payload_root(c: ApiContext, payload_id: str):
    with c.store.session() as s:
        payload = s.get(Payload, payload_id)
        if payload is None:
            raise not_found("payload", payload_id)
        if payload.deleted:
            raise api_error(410, f"payload {payload_id!r} was deleted by retention")
    return payload_dir(c.config.payloads_dir, payload_id)


def _target(root, path: str):
    try:
        return resolve_in(root, path)
    except UnsafePath as exc:
        raise api_error(400, str(exc))


@router.post("/payloads", response_model=PayloadOut, status_code=201)
def create_payload(c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        return row_dict(new_payload(s, c.config.payloads_dir), ["id", "created_at", "deleted"])


@router.put("/payloads/{payload_id}/files/{path:path}", response_model=FileOut, status_code=201)
async def upload_file(request: Request, payload_id: str = IdPath, path: str = Path(max_length=4096),
                      c: ApiContext = Depends(ctx)):
    root = _payload_root(c, payload_id)
    target = _target(root, path)
    if target.is_dir():
        raise api_error(409, f"{path!r} is a directory in payload {payload_id}")
    for parent in target.relative_to(root.resolve()).parents:
        if parent != parent.parent and (root / parent).is_file():
            raise api_error(409, f"{parent.as_posix()!r} is a file in payload {payload_id}")
    size = await write_stream_atomically(target, request.stream())
    return {"path": target.relative_to(root.resolve()).as_posix(), "size": size}


@router.get("/payloads/{payload_id}/files", response_model=list[FileOut])
def list_payload_files(payload_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return list_files(_payload_root(c, payload_id))


@router.get("/payloads/{payload_id}/files/{path:path}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_file(payload_id: str = IdPath, path: str = Path(max_length=4096), c: ApiContext = Depends(ctx)):
    root = _payload_root(c, payload_id)
    target = _target(root, path)
    if not target.is_file():
        raise api_error(404, f"file {path!r} not found in payload {payload_id}")
    return FileResponse(target, media_type="application/octet-stream")
