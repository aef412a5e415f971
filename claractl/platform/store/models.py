"""The platform's tables. This is the contract between the API, the engine and the DICOM adapter:
they meet only here (DESIGN §1).

Conventions:
- ids are UUID4 strings; timestamps are timezone-aware UTC.
- `owner` on configuration objects is the name of the project that applied it (claractl plan/apply
  ownership); NULL means made by hand through the API, which plan/apply never deletes.
- names that Clara treats case-insensitively keep their spelling in `name` and are unique on
  `name_key` (lower-cased).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


# Job states and statuses, as Clara named them.
class JobState:
    PENDING = "PENDING"      # created, waiting to be started or admitted
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class JobStatus:
    HEALTHY = "HEALTHY"
    FAULTED = "FAULTED"
    CANCELED = "CANCELED"
    EVICTED = "EVICTED"
    TERMINATED = "TERMINATED"   # killed by timeout


PRIORITIES = {"lower": 0, "normal": 1, "higher": 2, "immediate": 3}


class ExportState:
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class SchemaVersion(Base):
    """One row: the schema version of this database (see store/migrations)."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class Pipeline(Base):
    __tablename__ = "pipelines"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    name_key: Mapped[str] = mapped_column(String(255), unique=True)
    definition_text: Mapped[str] = mapped_column(Text)              # the PDL YAML as given
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)         # parsed PDL
    export: Mapped[list[Any]] = mapped_column(JSON, default=list)    # [{agent, destinations:[…]}] from the project
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True, default=dict)  # v3: Clara metadata
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Model(Base):
    __tablename__ = "models"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(71))                  # "sha256:<hex>" over sorted files
    config: Mapped[dict[str, Any]] = mapped_column(JSON)             # ModelConfig as JSON
    versions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="UNLOADED")  # LOADED | UNLOADED | FAILED
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True, default=dict)  # v3: Clara metadata
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelSet(Base):
    """Clara's model catalogs and catalog instances (schema v3): a named-by-id set of models."""

    __tablename__ = "model_sets"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))                      # "catalog" | "instance"
    models: Mapped[list[Any]] = mapped_column(JSON, default=list)      # model names
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AETitle(Base):
    __tablename__ = "ae_titles"
    ae_title: Mapped[str] = mapped_column(String(16), primary_key=True)
    pipelines: Mapped[list[Any]] = mapped_column(JSON, default=list)  # pipeline names
    group_by: Mapped[str] = mapped_column(String(9), default="0020,000D")
    timeout: Mapped[float] = mapped_column(Float, default=5.0)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Source(Base):
    __tablename__ = "sources"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Destination(Base):
    __tablename__ = "destinations"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool | None] = mapped_column(nullable=True, default=False)   # v4: DICOM over TLS
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PayloadType:
    PIPELINE = "pipeline"    # a job's own payload: its input/ and its operators' outputs
    REUSABLE = "reusable"    # made on its own (Clara Payloads.Create, POST /payloads): input for jobs


class Payload(Base):
    """A directory under <state-dir>/payloads/<id>/ ; a job's input lives in its `input/`."""

    __tablename__ = "payloads"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str | None] = mapped_column(String(16), nullable=True, default=PayloadType.PIPELINE)  # v3
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True, default=dict)  # v3: Clara metadata
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delete_after: Mapped[datetime | None] = mapped_column(nullable=True)
    deleted: Mapped[bool] = mapped_column(default=False)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    pipeline_id: Mapped[str] = mapped_column(String(36), ForeignKey("pipelines.id"))
    pipeline_name: Mapped[str] = mapped_column(String(255))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)          # PDL snapshot at creation
    payload_id: Mapped[str] = mapped_column(String(36), ForeignKey("payloads.id"))
    priority: Mapped[int] = mapped_column(Integer, default=1)          # PRIORITIES value
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.HEALTHY)
    started: Mapped[bool] = mapped_column(default=False)               # start requested (queued)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)  # DICOM origin etc.
    input_payloads: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True, default=list)  # v3: input came from
    timeout: Mapped[float] = mapped_column(Float, default=600.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)      # schema v2: API → engine
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    operators: Mapped[list["OperatorRun"]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="OperatorRun.index"
    )


class OperatorRun(Base):
    __tablename__ = "operator_runs"
    __table_args__ = (UniqueConstraint("job_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id"))
    name: Mapped[str] = mapped_column(String(255))
    index: Mapped[int] = mapped_column(Integer)                        # topological order
    state: Mapped[str] = mapped_column(String(16), default=JobState.PENDING)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.HEALTHY)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)   # schema v2
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    job: Mapped[Job] = relationship(back_populates="operators")


class ExportTask(Base):
    """Clara's Results Service task: deliver some of a job's files through an agent."""

    __tablename__ = "export_tasks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id"))
    agent: Mapped[str] = mapped_column(String(64))                     # "dicom" | "renderserver" | …
    destination: Mapped[str | None] = mapped_column(String(255), nullable=True)  # destination name
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)       # paths relative to the payload root
    file_status: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # path → status text
    state: Mapped[str] = mapped_column(String(16), default=ExportState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditOutcome:
    """EventOutcomeIndicator of the DICOM audit message (PS3.15 A.5, RFC 3881)."""
    SUCCESS = 0
    MINOR_FAILURE = 4        # refused, retried, not delivered yet
    SERIOUS_FAILURE = 8      # the action failed
    MAJOR_FAILURE = 12


class AuditEvent(Base):
    """One audit trail entry (schema v5): an association, a study received, a job, an export, an
    API write. Who (`actor`), from where (`source`), on what (`target`), with which outcome; the
    study and patient only by their identifiers, never more (docs/operations.md)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)   # order of recording
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)       # association | study | job | export | api
    action: Mapped[str] = mapped_column(String(32))                  # accepted, rejected, received, started, …
    outcome: Mapped[int] = mapped_column(Integer, default=AuditOutcome.SUCCESS)
    actor: Mapped[str] = mapped_column(String(255), default="")      # calling AE, "api (bearer token)", "engine"
    source: Mapped[str] = mapped_column(String(255), default="")     # peer address, client address
    target: Mapped[str] = mapped_column(String(512), default="")     # called AE, destination, request path
    study_uid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApplyLock(Base):
    """One apply at a time per project + target (DESIGN §4)."""

    __tablename__ = "apply_locks"
    scope: Mapped[str] = mapped_column(String(512), primary_key=True)  # "<project>/<target>"
    lock_id: Mapped[str] = mapped_column(String(36), default=new_id)
    holder: Mapped[str] = mapped_column(String(255))                   # user@host pid N
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
