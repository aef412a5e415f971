"""Payloads: create, upload (streamed), list, download, remove a file, delete, metadata.

Two kinds (`Payload.type`): a job's own payload (`pipeline`: its `input/` and its operators'
outputs) and a `reusable` one (Clara's Payloads.Create, `POST /payloads`), which jobs take as
input. A job never writes into a reusable payload: its input files are linked (or copied) into the
job's own `input/` when the job is created and made read-only, so two jobs on one payload each
keep their own outputs. Once a job has started, its own payload is read-only to uploads.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claractl.platform.operations import metadata as md
from claractl.platform.operations.common import row_dict
from claractl.platform.operations.context import Context
from claractl.platform.operations.errors import BadRequest, Conflict, Gone, Invalid, NotFound, not_found
from claractl.platform.operations.ids import clara_id, lookup_id
from claractl.platform.store.models import Job, JobState, Payload, PayloadType
from claractl.platform.store.payloads import (
    UnsafePath, delete_payload_dir, fsync_dir, list_files as _list_files, new_payload, payload_dir, resolve_in,
    write_file_atomically,
)

INPUT = "input"
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def as_dict(p: Payload, job_id: str | None = None) -> dict[str, Any]:
    out = row_dict(p, ["id", "created_at", "deleted"])
    out.update(clara_id=clara_id(p.id), type=p.type or PayloadType.PIPELINE, metadata=dict(p.metadata_ or {}),
               job_id=job_id)
    return out


def owning_job(s: Session, payload_id: str) -> Job | None:
    """The job whose own payload this is (oldest first: before schema v3 jobs could share one)."""
    return s.scalars(select(Job).where(Job.payload_id == payload_id).order_by(Job.created_at)).first()


def find(s: Session, payload_id: str, allow_deleted: bool = False) -> Payload:
    p = s.get(Payload, lookup_id(payload_id))
    if p is None:
        raise not_found("payload", payload_id)
    if p.deleted and not allow_deleted:
        raise Gone(f"payload {payload_id!r} was deleted", "payload")
    return p


def root(c: Context, payload_id: str) -> Path:
    with c.store.session() as s:
        p = find(s, payload_id)
    return payload_dir(c.config.payloads_dir, p.id)


def create_payload(c: Context, metadata: dict[str, str] | None = None,
                   kind: str = PayloadType.REUSABLE) -> dict[str, Any]:
    md.check_new(metadata or {}, "payload")
    with c.store.session() as s:
        p = new_payload(s, c.config.payloads_dir)
        p.type, p.metadata_ = kind, dict(metadata or {})
        s.flush()
        return as_dict(p)


def get_payload(c: Context, payload_id: str) -> dict[str, Any]:
    with c.store.session() as s:
        p = find(s, payload_id, allow_deleted=True)
        job = owning_job(s, p.id)
        return as_dict(p, job.id if job else None)


def list_payloads(c: Context, kind: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    with c.store.session() as s:
        q = select(Payload).where(Payload.deleted.is_(False)).order_by(Payload.created_at.desc()).limit(limit)
        if kind:
            q = q.where(Payload.type == kind)
        rows = list(s.scalars(q))
        jobs = {j.payload_id: j.id for j in s.scalars(select(Job).where(Job.payload_id.in_([p.id for p in rows])))}
        return [as_dict(p, jobs.get(p.id)) for p in rows]


def target(c: Context, payload_id: str, rel: str, for_write: bool = False) -> tuple[Path, Path]:
    """(payload root, resolved file path) for a path relative to the payload root; BadRequest for
    paths that leave it, Conflict for a write into a started job's payload or over a directory."""
    with c.store.session() as s:
        p = find(s, payload_id)
        if for_write:
            job = owning_job(s, p.id)
            if job is not None and job.started:
                raise Conflict(f"payload {payload_id} belongs to job {job.id}, which has started: "
                               f"its files are read-only", "payload")
    base = payload_dir(c.config.payloads_dir, p.id)
    try:
        path = resolve_in(base, rel)
    except UnsafePath as exc:
        raise BadRequest(str(exc), "payload") from None
    if for_write:
        if path.is_dir():
            raise Conflict(f"{rel!r} is a directory in payload {payload_id}", "payload")
        for parent in path.relative_to(base.resolve()).parents:
            if parent != parent.parent and (base / parent).is_file():
                raise Conflict(f"{parent.as_posix()!r} is a file in payload {payload_id}", "payload")
    return base, path


def upload(c: Context, payload_id: str, rel: str, chunks: Iterable[bytes]) -> dict[str, Any]:
    """Write one file (streamed, durable, atomic) at `rel` under the payload root."""
    base, path = target(c, payload_id, rel, for_write=True)
    size = write_file_atomically(path, chunks)
    return {"path": path.relative_to(base.resolve()).as_posix(), "size": size}


def list_files(c: Context, payload_id: str, with_mode: bool = False) -> list[dict[str, Any]]:
    """[{path, size}] relative to the payload root, sorted; `with_mode` adds the permission bits."""
    base = root(c, payload_id)
    files = _list_files(base)
    if with_mode:
        for f in files:
            f["mode"] = stat.S_IMODE((base / f["path"]).stat().st_mode)
    return files


def file_to_read(c: Context, payload_id: str, rel: str) -> Path:
    _base, path = target(c, payload_id, rel)
    if not path.is_file():
        raise NotFound(f"file {rel!r} not found in payload {payload_id}", "file")
    return path


def remove_file(c: Context, payload_id: str, rel: str) -> None:
    base, path = target(c, payload_id, rel, for_write=True)
    if not path.is_file():
        raise NotFound(f"file {rel!r} not found in payload {payload_id}", "file")
    path.unlink()
    fsync_dir(path.parent)


def delete_payload(c: Context, payload_id: str) -> None:
    """Remove the payload's files for good; the row stays, marked deleted (jobs still name it)."""
    with c.store.session() as s:
        p = find(s, payload_id)
        busy = s.scalars(select(Job).where(Job.payload_id == p.id, Job.state != JobState.STOPPED)).first()
        if busy is not None:
            raise Conflict(f"payload {payload_id} belongs to job {busy.id}, which has not stopped; "
                           f"cancel it first", "payload")
        p.deleted = True
        delete_payload_dir(c.config.payloads_dir, p.id)


def _metadata_target(s: Session, payload_id: str) -> Payload:
    p = find(s, payload_id)
    if (p.type or PayloadType.PIPELINE) != PayloadType.REUSABLE:
        raise Invalid(f"payload {payload_id} is a job's payload; metadata is kept on reusable payloads "
                      f"(and on the job)", "payload")
    return p


def add_metadata(c: Context, payload_id: str, new: dict[str, str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: _metadata_target(s, payload_id), "payload", add=new)


def remove_metadata(c: Context, payload_id: str, keys: list[str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: _metadata_target(s, payload_id), "payload", remove=keys)


def link_inputs(c: Context, s: Session, sources: list[str], dest: Path) -> list[str]:
    """Give a new job payload (`dest`) the input files of `sources` (payload ids, in order): hard
    links where the file system allows, else copies; read-only. Two sources with the same file
    name are refused (Clara: "name collisions … result in an error"). Returns the stored ids."""
    ids: list[str] = []
    placed: dict[str, str] = {}
    for given in sources:
        p = find(s, given)
        ids.append(p.id)
        src_root = payload_dir(c.config.payloads_dir, p.id) / INPUT
        if not src_root.is_dir():
            continue
        for src in sorted(src_root.rglob("*")):
            if not src.is_file() or src.name.startswith(".upload-"):
                continue
            rel = src.relative_to(src_root).as_posix()
            if rel in placed:
                raise Conflict(f"input payloads {placed[rel]} and {given} both have input/{rel}", "payload")
            placed[rel] = given
            out = dest / INPUT / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, out)
            except OSError:
                shutil.copyfile(src, out)
                with open(out, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.chmod(out, READ_ONLY)
    for d in {dest / INPUT, *((dest / INPUT / r).parent for r in placed)}:
        fsync_dir(d)
    return ids
