"""Creating a job: the one way the API and the DICOM adapter hand work to the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from claractl.platform.audit import trail
from claractl.platform.store import changes
from claractl.platform.store.models import PRIORITIES, Job, OperatorRun, Payload, Pipeline, utcnow


def operator_order(definition: dict[str, Any]) -> list[str]:
    """Operator names in a topological order of the PDL graph (stable: file order among peers).

    The project validator has already rejected cycles; a cycle here is a programming error.
    """
    operators = definition.get("operators") or []
    names = [op["name"] for op in operators]
    deps = {
        op["name"]: {i["from"] for i in (op.get("input") or []) if i.get("from")} for op in operators
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and deps[n] <= set(ordered)]
        if not ready:
            raise ValueError(f"pipeline {definition.get('name')!r} has a cycle among {sorted(set(names) - set(ordered))}")
        ordered.extend(ready)
    return ordered


def create_job(
    session: Session,
    pipeline: Pipeline,
    payload: Payload,
    *,
    name: str | None = None,
    priority: str = "normal",
    metadata: dict[str, Any] | None = None,
    timeout: float = 600.0,
    start: bool = False,
    variables: dict[str, Any] | None = None,
) -> Job:
    """Add a PENDING job with one OperatorRun per operator; `start=True` also queues it.

    The caller commits; the payload's `input/` must already be on disk.
    """
    job = Job(
        name=name or pipeline.name,
        pipeline_id=pipeline.id,
        pipeline_name=pipeline.name,
        definition=pipeline.definition,
        payload_id=payload.id,
        priority=PRIORITIES[priority],
        metadata_=metadata or {},
        timeout=timeout,
        variables=variables or {},
    )
    job.operators = [
        OperatorRun(name=op_name, index=i) for i, op_name in enumerate(operator_order(pipeline.definition))
    ]
    if start:
        job.started = True
        job.queued_at = utcnow()
    session.add(job)
    session.flush()
    if start:
        changes.mark(session, "jobs")
    trail.record_job(session, job, "created", actor=(metadata or {}).get("calling_ae") or "api",
                     detail={"priority": priority, "started": start})
    return job
