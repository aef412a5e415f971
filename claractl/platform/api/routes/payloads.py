"""Payloads: create, upload files (streamed, any size), list, download, remove, delete. Paths are
relative to the payload root (`input/…` for job input); anything leaving the payload is rejected.
The logic is claractl.platform.operations.payloads (shared with the Clara API)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.schemas import FileOut, PayloadIn, PayloadOut
from claractl.platform.operations import payloads as ops
from claractl.platform.store.payloads import write_stream_atomically

router = APIRouter(tags=["payloads"])
IdPath = Path(max_length=36)
FilePath = Path(max_length=4096)


@router.post("/payloads", response_model=PayloadOut, status_code=201)
def create_payload(body: PayloadIn | None = None, c: ApiContext = Depends(ctx)):
    return ops.create_payload(c, metadata=body.metadata if body else None)


@router.get("/payloads", response_model=list[PayloadOut])
def list_payloads(type: str | None = Query(default=None, pattern="^(pipeline|reusable)$"),
                  limit: int = Query(default=1000, ge=1, le=100000), c: ApiContext = Depends(ctx)):
    return ops.list_payloads(c, kind=type, limit=limit)


@router.get("/payloads/{payload_id}", response_model=PayloadOut)
def get_payload(payload_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return ops.get_payload(c, payload_id)


@router.delete("/payloads/{payload_id}", status_code=204)
def delete_payload(payload_id: str = IdPath, c: ApiContext = Depends(ctx)):
    ops.delete_payload(c, payload_id)
    return Response(status_code=204)


@router.put("/payloads/{payload_id}/files/{path:path}", response_model=FileOut, status_code=201)
async def upload_file(request: Request, payload_id: str = IdPath, path: str = FilePath, c: ApiContext = Depends(ctx)):
    root, target = ops.target(c, payload_id, path, for_write=True)
    size = await write_stream_atomically(target, request.stream())
    return {"path": target.relative_to(root.resolve()).as_posix(), "size": size}


@router.get("/payloads/{payload_id}/files", response_model=list[FileOut])
def list_payload_files(payload_id: str = IdPath, c: ApiContext = Depends(ctx)):
    return ops.list_files(c, payload_id)


@router.get("/payloads/{payload_id}/files/{path:path}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_file(payload_id: str = IdPath, path: str = FilePath, c: ApiContext = Depends(ctx)):
    return FileResponse(ops.file_to_read(c, payload_id, path), media_type="application/octet-stream")


@router.delete("/payloads/{payload_id}/files/{path:path}", status_code=204)
def remove_file(payload_id: str = IdPath, path: str = FilePath, c: ApiContext = Depends(ctx)):
    ops.remove_file(c, payload_id, path)
    return Response(status_code=204)
