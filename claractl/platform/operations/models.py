"""Models: a Triton model directory uploaded as an archive (tar.gz over HTTP, zip over the Clara
API), checked, stored under `<models_dir>/<name>/` with its digest, and (re)loaded on the inference
service; list, get, load, unload, delete, download (zip), metadata; Clara's catalogs and instances.

A model's Clara id is derived from its name (`ids.model_id`), so it never changes.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claractl.platform.engine.inference_hook import ModelLoadError
from claractl.platform.operations import metadata as md
from claractl.platform.operations.common import row_dict
from claractl.platform.operations.context import Context
from claractl.platform.operations.errors import Conflict, Invalid, NotFound, not_found
from claractl.platform.operations.ids import clara_id, lookup_id, model_id
from claractl.platform.safe_tar import UnsafeArchive, extract_tar
from claractl.platform.store.digest import model_digest
from claractl.platform.store.models import Model, ModelSet, utcnow

FIELDS = ["name", "digest", "config", "versions", "state", "message", "owner", "created_at", "updated_at"]
KINDS = ("catalog", "instance")


class BadModel(ValueError):
    pass


def as_dict(m: Model) -> dict[str, Any]:
    return {**row_dict(m, FIELDS), "clara_id": model_id(m.name), "metadata": dict(m.metadata_ or {}),
            "platform": (m.config or {}).get("platform") or (m.config or {}).get("backend") or ""}


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BadModel(f"archive member {info.filename!r} is not a regular file or directory")
            if not (dest / info.filename).resolve().is_relative_to(dest.resolve()):
                raise BadModel(f"archive member {info.filename!r} leaves the model directory")
        zf.extractall(dest)


def extract(archive: Path, dest: Path) -> Path:
    """Safe extraction of a tar.gz or zip: regular files and dirs only, nothing outside dest;
    returns the model root (config.pbtxt at the top, or inside one top-level folder)."""
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        else:
            extract_tar(archive, dest)
    except UnsafeArchive as exc:
        raise BadModel(str(exc)) from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BadModel(f"the body is not a readable tar.gz or zip archive: {exc}") from exc
    if (dest / "config.pbtxt").is_file():
        return dest
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / "config.pbtxt").is_file():
        return entries[0]
    raise BadModel("the archive has no config.pbtxt at its top level (a Triton model directory)")


def check_model_dir(root: Path, name: str, external_triton: bool):
    """The inference package's checks (config.pbtxt vs. the ONNX graph, versions, labels), with
    positions shown relative to the uploaded model (`<name>/config.pbtxt:LINE:COL`)."""
    from claractl.platform.inference import ModelConfigError, load_model_dir

    try:
        return load_model_dir(root, allow_unsupported_backend=external_triton)
    except ModelConfigError as exc:
        raise BadModel("; ".join(str(d).replace(str(root), name) for d in exc.diagnostics)) from exc


def _load(c: Context, name: str) -> tuple[str, str | None]:
    if not c.hook.available():
        return "UNLOADED", "no inference service is running; the model loads when one starts"
    try:
        c.hook.load(name)
        return "LOADED", None
    except ModelLoadError as exc:
        return "FAILED", str(exc)


def _set_state(c: Context, name: str, state: str, message: str | None) -> dict[str, Any]:
    with c.store.session() as s:
        row = s.get(Model, name)
        row.state, row.message, row.updated_at = state, message, utcnow()
        return as_dict(row)


def find(s: Session, name: str | None = None, clara: str | None = None) -> Model:
    if clara is not None:
        want = clara.replace("-", "").lower()
        for m in s.scalars(select(Model)):
            if model_id(m.name) == want:
                return m
        raise not_found("model", clara)
    m = s.get(Model, name)
    if m is None:
        raise not_found("model", name or "")
    return m


def list_models(c: Context) -> list[dict[str, Any]]:
    with c.store.session() as s:
        return [as_dict(m) for m in s.scalars(select(Model).order_by(Model.name))]


def get_model(c: Context, name: str | None = None, clara: str | None = None) -> dict[str, Any]:
    with c.store.session() as s:
        return as_dict(find(s, name, clara))


@contextmanager
def upload_area(c: Context) -> Iterator[Path]:
    """A scratch directory beside the models (same file system: the final move is a rename)."""
    c.config.models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".upload-", dir=c.config.models_dir))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def put_model(c: Context, name: str, archive: Path, owner: str | None = None,
              metadata: dict[str, str] | None = None) -> tuple[dict[str, Any], bool]:
    """Store an uploaded model archive (tar.gz or zip, in an `upload_area`) as model `name` and
    (re)load it; returns (model, created)."""
    models_dir = c.config.models_dir
    work = archive.parent
    unpacked = work / "unpacked"
    unpacked.mkdir()
    try:
        # The folder must carry the model's name: Triton (and our checks) match it against config.pbtxt.
        root = work / "staged" / name
        root.parent.mkdir()
        os.replace(extract(archive, unpacked), root)
        info = check_model_dir(root, name, external_triton=c.config.inference.url is not None)
    except BadModel as exc:
        raise Invalid(f"model {name!r}: {exc}", "model") from None
    from claractl.platform.inference.repository import config_to_json
    config = config_to_json(info.config, include_defaults=False)
    digest = model_digest(root)
    final = models_dir / name
    old = models_dir / f".old-{uuid.uuid4().hex}"
    if final.exists():
        os.replace(final, old)
    os.replace(root, final)
    shutil.rmtree(old, ignore_errors=True)
    with c.store.session() as s:
        row = s.get(Model, name)
        created = row is None
        if created:
            row = Model(name=name, metadata_={})
            s.add(row)
        row.digest, row.config, row.versions, row.owner = digest, config, info.available_versions, owner
        if metadata:
            row.metadata_ = {**(row.metadata_ or {}), **metadata}
        row.state, row.message, row.updated_at = "UNLOADED", None, utcnow()
    state, message = _load(c, name)
    return _set_state(c, name, state, message), created


def load_model(c: Context, name: str) -> dict[str, Any]:
    get_model(c, name)
    if not c.hook.available():
        raise Conflict(f"model {name!r} cannot be loaded: no inference service is running", "model")
    state, message = _load(c, name)
    out = _set_state(c, name, state, message)
    if state == "FAILED":
        raise Invalid(message or f"model {name!r} failed to load", "model")
    return out


def unload_model(c: Context, name: str) -> dict[str, Any]:
    get_model(c, name)
    try:
        c.hook.unload(name)
    except ModelLoadError as exc:
        raise Conflict(str(exc), "model") from None
    return _set_state(c, name, "UNLOADED", None)


def delete_model(c: Context, name: str | None = None, clara: str | None = None) -> str:
    name = get_model(c, name, clara)["name"]
    try:
        c.hook.unload(name)
    except ModelLoadError:
        pass   # deleting anyway: the files go, the service forgets it on its next index
    shutil.rmtree(c.config.models_dir / name, ignore_errors=True)
    with c.store.session() as s:
        row = s.get(Model, name)
        if row is not None:
            s.delete(row)
        for model_set in s.scalars(select(ModelSet)):
            if name in (model_set.models or []):
                model_set.models = [m for m in model_set.models if m != name]
    return name


def zip_model(c: Context, name: str) -> bytes:
    """The model directory as a zip (Clara's DownloadModel format), folder named after the model."""
    root = c.config.models_dir / name
    if not root.is_dir():
        raise NotFound(f"the files of model {name!r} are missing", "model")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                zf.write(p, f"{name}/{p.relative_to(root).as_posix()}")
    return buf.getvalue()


def add_metadata(c: Context, clara: str, new: dict[str, str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, clara=clara), "model", add=new)


def remove_metadata(c: Context, clara: str, keys: list[str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, clara=clara), "model", remove=keys)


# -- catalogs and instances (Clara): sets of models; an instance's models are loaded ---------------
def _set(s: Session, kind: str, set_id: str) -> ModelSet:
    row = s.get(ModelSet, lookup_id(set_id))
    if row is None or row.kind != kind:
        raise not_found(kind, set_id)
    return row


def create_set(c: Context, kind: str) -> str:
    with c.store.session() as s:
        row = ModelSet(kind=kind, models=[])
        s.add(row)
        s.flush()
        return clara_id(row.id)


def list_sets(c: Context, kind: str) -> list[dict[str, Any]]:
    with c.store.session() as s:
        rows = list(s.scalars(select(ModelSet).where(ModelSet.kind == kind).order_by(ModelSet.created_at)))
        models = {m.name: as_dict(m) for m in s.scalars(select(Model))}
        return [{"id": clara_id(r.id), "models": [models[n] for n in r.models or [] if n in models]} for r in rows]


def read_set(c: Context, kind: str, set_id: str) -> list[dict[str, Any]]:
    with c.store.session() as s:
        row = _set(s, kind, set_id)
        return [as_dict(s.get(Model, n)) for n in row.models or [] if s.get(Model, n) is not None]


def update_set(c: Context, kind: str, set_id: str, model_ids: list[str]) -> str:
    """Replace the set's models. An instance's models are loaded on the inference service (a model
    that fails to load is reported and the instance is left as it was)."""
    with c.store.session() as s:
        row = _set(s, kind, set_id)
        names = [find(s, clara=m).name for m in model_ids]
    if kind == "instance" and c.hook.available():
        for name in names:
            state, message = _load(c, name)
            _set_state(c, name, state, message)
            if state == "FAILED":
                raise Invalid(f"instance {set_id}: model {name!r} failed to load: {message}", "instance")
    with c.store.session() as s:
        row = _set(s, kind, set_id)
        row.models, row.updated_at = names, utcnow()
        return clara_id(row.id)


def delete_set(c: Context, kind: str, set_id: str) -> str:
    with c.store.session() as s:
        row = _set(s, kind, set_id)
        s.delete(row)
        return clara_id(row.id)
