"""Pipelines: register (by name over HTTP, from a definition file over the Clara API), list, get,
update, delete, metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claractl.platform.operations import metadata as md
from claractl.platform.operations.common import row_dict
from claractl.platform.operations.context import Context
from claractl.platform.operations.errors import Conflict, Invalid, not_found
from claractl.platform.operations.ids import clara_id, lookup_id, stored_id
from claractl.platform.store.jobs import operator_order
from claractl.platform.store.models import Job, JobState, Pipeline, utcnow
from claractl.project import ProjectError, parse_pipeline

FIELDS = ["id", "name", "definition_text", "definition", "export", "owner", "created_at", "updated_at"]
DELETED_MARK = "#deleted-"


def as_dict(p: Pipeline) -> dict[str, Any]:
    return {**row_dict(p, FIELDS), "clara_id": clara_id(p.id), "metadata": dict(p.metadata_ or {})}


def parse_pdl(text: str, source: str) -> dict[str, Any]:
    """Validate a Clara PDL text with the project loader; Invalid (every problem, with line and
    column) when it does not pass."""
    try:
        return parse_pipeline(text, source)
    except ProjectError as exc:
        raise Invalid(f"invalid pipeline definition: {exc}", "pipeline") from None


def by_name(s: Session, name: str) -> Pipeline | None:
    return s.scalars(select(Pipeline).where(Pipeline.name_key == name.lower())).first()


def find(s: Session, name: str | None = None, pipeline_id: str | None = None) -> Pipeline:
    """A live (not deleted) pipeline by name or by id (either spelling); NotFound otherwise."""
    if pipeline_id is not None:
        p = s.get(Pipeline, lookup_id(pipeline_id))
        if p is None or DELETED_MARK in p.name_key:
            raise not_found("pipeline", pipeline_id)
        return p
    p = by_name(s, name or "")
    if p is None:
        raise not_found("pipeline", name or "")
    return p


def list_pipelines(c: Context) -> list[dict[str, Any]]:
    with c.store.session() as s:
        query = select(Pipeline).where(~Pipeline.name_key.contains(DELETED_MARK)).order_by(Pipeline.name_key)
        return [as_dict(p) for p in s.scalars(query)]


def get_pipeline(c: Context, name: str | None = None, pipeline_id: str | None = None) -> dict[str, Any]:
    with c.store.session() as s:
        return as_dict(find(s, name, pipeline_id))


def put_pipeline(c: Context, name: str, definition_text: str, export: list[Any],
                 owner: str | None) -> tuple[dict[str, Any], bool]:
    """Create or replace the pipeline called `name` (HTTP PUT); returns (pipeline, created)."""
    definition = parse_pdl(definition_text, f"pipeline {name}")
    with c.store.session() as s:
        p = by_name(s, name)
        created = p is None
        if created:
            p = Pipeline(name=name, name_key=name.lower())
            s.add(p)
        p.name = name
        p.definition_text = definition_text
        p.definition = definition
        p.export = export
        p.owner = owner
        p.updated_at = utcnow()
        s.flush()
        return as_dict(p), created


def create_from_definition(c: Context, definition_text: str, source: str, pipeline_id: str | None = None,
                           metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Clara's Pipelines.Create: the name comes from the definition's `name`.

    claractl names pipelines uniquely. The same definition under an existing name answers with the
    existing pipeline (a script that creates its pipeline on every run keeps working); a different
    definition under a taken name is refused, naming the pipeline to update or remove."""
    definition = parse_pdl(definition_text, source)
    name = definition["name"]
    md.check_new(metadata or {}, "pipeline")
    with c.store.session() as s:
        existing = by_name(s, name)
        if existing is not None:
            if existing.definition_text.strip() != definition_text.strip():
                raise Conflict(f"a pipeline named {name!r} already exists (id {clara_id(existing.id)}) with a "
                               f"different definition; claractl names pipelines uniquely: update that one "
                               f"(Pipelines.Update) or remove it first", "pipeline")
            if pipeline_id and lookup_id(pipeline_id) != existing.id:
                raise Conflict(f"pipeline {name!r} already exists with id {clara_id(existing.id)}", "pipeline")
            new = {k: v for k, v in (metadata or {}).items() if (existing.metadata_ or {}).get(k) != v}
            existing.metadata_ = md.added(existing.metadata_, new, "pipeline")
            return as_dict(existing)
        p = Pipeline(name=name, name_key=name.lower(), definition_text=definition_text, definition=definition,
                     export=[], owner=None, metadata_=dict(metadata or {}))
        if pipeline_id:
            p.id = stored_id(pipeline_id, "pipeline")
            if s.get(Pipeline, p.id) is not None:
                raise Conflict(f"pipeline id {pipeline_id} is already in use", "pipeline")
        s.add(p)
        s.flush()
        return as_dict(p)


def update_definition(c: Context, pipeline_id: str, definition_text: str, source: str) -> dict[str, Any]:
    """Clara's Pipelines.Update: new definition for the pipeline with this id (its name may change
    to one that is free). Jobs already created keep their own snapshot."""
    definition = parse_pdl(definition_text, source)
    with c.store.session() as s:
        p = find(s, pipeline_id=pipeline_id)
        new_name = definition["name"]
        other = by_name(s, new_name)
        if other is not None and other.id != p.id:
            raise Conflict(f"cannot rename pipeline {p.name!r} to {new_name!r}: that name is taken "
                           f"(id {clara_id(other.id)})", "pipeline")
        p.name, p.name_key = new_name, new_name.lower()
        p.definition_text, p.definition, p.updated_at = definition_text, definition, utcnow()
        return as_dict(p)


def delete_pipeline(c: Context, name: str | None = None, pipeline_id: str | None = None) -> None:
    with c.store.session() as s:
        p = find(s, name, pipeline_id)
        shown = name or pipeline_id
        active = s.scalar(select(func.count()).select_from(Job).where(
            Job.pipeline_id == p.id, Job.state != JobState.STOPPED))
        if active:
            raise Conflict(f"pipeline {shown!r} has {active} job(s) not yet stopped; cancel them first", "pipeline")
        # Jobs keep their own definition snapshot; detach them by keeping the row id unused.
        if s.scalar(select(func.count()).select_from(Job).where(Job.pipeline_id == p.id)):
            p.name_key = f"{p.name_key}{DELETED_MARK}{p.id}"[:255]
            p.owner = None
            p.definition = {**p.definition, "deleted": True}
        else:
            s.delete(p)


def add_metadata(c: Context, pipeline_id: str, new: dict[str, str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, pipeline_id=pipeline_id), "pipeline", add=new)


def remove_metadata(c: Context, pipeline_id: str, keys: list[str]) -> dict[str, Any]:
    return md.change(c.store, lambda s: find(s, pipeline_id=pipeline_id), "pipeline", remove=keys)


def dag(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The operator graph as Clara's Details shows it: each root with the operators that read
    from it (`next`), recursively. Operators in topological order."""
    ops = definition.get("operators") or []
    readers: dict[str, list[str]] = {op["name"]: [] for op in ops}
    names = {op["name"].lower(): op["name"] for op in ops}
    for op in ops:
        for src in {str(i["from"]).lower() for i in op.get("input") or [] if i.get("from")}:
            if src in names:
                readers[names[src]].append(op["name"])
    roots = [n for n in operator_order(definition)
             if not any(i.get("from") for op in ops if op["name"] == n for i in op.get("input") or [])]

    def node(name: str) -> dict[str, Any]:
        return {"name": name, "next": [node(r) for r in readers[name]]}

    return [node(r) for r in roots]
