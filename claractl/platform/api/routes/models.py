"""Models: PUT a tar.gz of a Triton model directory; the platform keeps it under
`<models_dir>/<name>/`, records its digest and parsed config, and asks the inference service to
(re)load it when one is running."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path as FsPath

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import select

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.errors import api_error
from claractl.platform.api.routes.common import not_found, row_dict
from claractl.platform.api.schemas import ModelOut
from claractl.platform.engine.inference_hook import ModelLoadError
from claractl.platform.inference.repository import config_to_json
from claractl.platform.store.digest import model_digest
from claractl.platform.store.models import Model, utcnow

router = APIRouter(tags=["models"])
NamePath = Path(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
FIELDS = ["name", "digest", "config", "versions", "state", "message", "owner", "created_at", "updated_at"]


class BadModel(ValueError):
    pass


def _extract(archive: FsPath, dest: FsPath) -> FsPath:
    """Safe extraction: regular files and dirs only, nothing outside dest; returns the model root."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir()):
                    raise BadModel(f"archive member {m.name!r} is not a regular file or directory")
                target = (dest / m.name).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise BadModel(f"archive member {m.name!r} leaves the model directory")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadModel(f"the body is not a readable tar.gz archive: {exc}") from exc
    if (dest / "config.pbtxt").is_file():
        return dest
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "config.pbtxt").is_file():
        return entries[0]
    raise BadModel("the archive has no config.pbtxt at its top level (a Triton model directory)")


def check_model_dir(root: FsPath, name: str, external_triton: bool):
    """The inference package's checks (config.pbtxt vs. the ONNX graph, versions, labels), with
    positions shown relative to the uploaded model (`<name>/config.pbtxt:LINE:COL`)."""
    from claractl.platform.inference import ModelConfigError, load_model_dir

    try:
        return load_model_dir(root, allow_unsupported_backend=external_triton)
    except ModelConfigError as exc:
        raise BadModel("; ".join(str(d).replace(str(root), name) for d in exc.diagnostics)) from exc


def _load(c: ApiContext, name: str) -> tuple[str, str | None]:
    if not c.hook.available():
        return "UNLOADED", "no inference service is running; the model loads when one starts"
    try:
        c.hook.load(name)
        return "LOADED", None
    except ModelLoadError as exc:
        return "FAILED", str(exc)


def _set_state(c: ApiContext, name: str, state: str, message: str | None) -> dict:
    with c.store.session() as s:
        row = s.get(Model, name)
        row.state, row.message, row.updated_at = state, message, utcnow()
        return row_dict(row, FIELDS)


@router.get("/models", response_model=list[ModelOut])
def list_models(c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        return [row_dict(m, FIELDS) for m in s.scalars(select(Model).order_by(Model.name))]


@router.get("/models/{name}", response_model=ModelOut)
def get_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    with c.store.session() as s:
        m = s.get(Model, name)
        if m is None:
            raise not_found("model", name)
        return row_dict(m, FIELDS)


@router.put("/models/{name}", response_model=ModelOut,
            openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def put_model(request: Request, response: Response, name: str = NamePath,
                    owner: str | None = Query(default=None, max_length=255), c: ApiContext = Depends(ctx)):
    models_dir = c.config.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    work = FsPath(tempfile.mkdtemp(prefix=".upload-", dir=models_dir))
    try:
        archive = work / "model.tar.gz"
        with open(archive, "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        unpacked = work / "unpacked"
        unpacked.mkdir()
        try:
            # The folder must carry the model's name: Triton (and our checks) match it against config.pbtxt.
            root = work / "staged" / name
            root.parent.mkdir()
            os.replace(_extract(archive, unpacked), root)
            info = check_model_dir(root, name, external_triton=c.config.inference.url is not None)
        except BadModel as exc:
            raise api_error(422, f"model {name!r}: {exc}")
        config = config_to_json(info.config, include_defaults=False)
        digest = model_digest(root)
        versions = info.available_versions
        final = models_dir / name
        old = models_dir / f".old-{uuid.uuid4().hex}"
        if final.exists():
            os.replace(final, old)
        os.replace(root, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with c.store.session() as s:
        row = s.get(Model, name)
        if row is None:
            row = Model(name=name)
            s.add(row)
            response.status_code = 201
        row.digest, row.config, row.versions, row.owner = digest, config, versions, owner
        row.state, row.message, row.updated_at = "UNLOADED", None, utcnow()
    state, message = _load(c, name)
    return _set_state(c, name, state, message)


@router.post("/models/{name}/load", response_model=ModelOut)
def load_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    get_model(name, c)
    if not c.hook.available():
        raise api_error(409, f"model {name!r} cannot be loaded: no inference service is running")
    state, message = _load(c, name)
    out = _set_state(c, name, state, message)
    if state == "FAILED":
        raise api_error(422, message or f"model {name!r} failed to load")
    return out


@router.post("/models/{name}/unload", response_model=ModelOut)
def unload_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    get_model(name, c)
    try:
        c.hook.unload(name)
    except ModelLoadError as exc:
        raise api_error(409, str(exc))
    return _set_state(c, name, "UNLOADED", None)


@router.delete("/models/{name}", status_code=204)
def delete_model(name: str = NamePath, c: ApiContext = Depends(ctx)):
    get_model(name, c)
    try:
        c.hook.unload(name)
    except ModelLoadError:
        pass   # deleting anyway: the files go, the service forgets it on its next index
    shutil.rmtree(c.config.models_dir / name, ignore_errors=True)
    with c.store.session() as s:
        row = s.get(Model, name)
        if row is not None:
            s.delete(row)
    return Response(status_code=204)
