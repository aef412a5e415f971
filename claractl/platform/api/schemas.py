"""Request and response bodies of the API (pydantic); the OpenAPI document is built from these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$"
AE_TITLE = r"^[\x20-\x5b\x5d-\x7e]{1,16}$"       # printable ASCII except backslash
Priority = Literal["lower", "normal", "higher", "immediate"]
Owner = Field(default=None, max_length=255)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportEntry(Strict):
    agent: str = Field(min_length=1, max_length=64)
    destinations: list[str] = Field(default_factory=list, max_length=100)
    # optional: export this operator's outputs instead of the pipeline's final outputs
    from_: str | None = Field(default=None, alias="from", max_length=255)
    name: str | None = Field(default=None, max_length=255)
    max_attempts: int = Field(default=5, ge=1, le=100, alias="max-attempts")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PipelineIn(Strict):
    definition_text: str = Field(min_length=1, max_length=1_000_000)
    export: list[ExportEntry] = Field(default_factory=list, max_length=50)
    owner: str | None = Owner


class PipelineOut(BaseModel):
    id: str
    clara_id: str                      # the same id as Clara's API spells it (32 hex digits)
    name: str
    definition_text: str
    definition: dict[str, Any]
    export: list[Any]
    owner: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AETitleIn(Strict):
    pipelines: list[str] = Field(default_factory=list, max_length=100)
    group_by: str = Field(default="0020,000D", pattern=r"^[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}$")
    timeout: float = Field(default=5.0, gt=0, le=86400)
    priority: Priority = "normal"
    owner: str | None = Owner


class AETitleOut(BaseModel):
    ae_title: str
    pipelines: list[str]
    group_by: str
    timeout: float
    priority: str
    owner: str | None
    created_at: datetime
    updated_at: datetime


class SourceIn(Strict):
    ae_title: str = Field(pattern=AE_TITLE)
    host: str = Field(min_length=1, max_length=255)
    owner: str | None = Owner


class SourceOut(BaseModel):
    name: str
    ae_title: str
    host: str
    owner: str | None
    created_at: datetime
    updated_at: datetime


class DestinationIn(Strict):
    ae_title: str = Field(pattern=AE_TITLE)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    tls: bool = False                  # DICOM over TLS (the adapter's tls settings: CA, our certificate)
    owner: str | None = Owner


class DestinationOut(SourceOut):
    port: int
    tls: bool


class ModelOut(BaseModel):
    name: str
    clara_id: str                      # Clara's model id (derived from the name; never changes)
    platform: str                      # config.pbtxt platform / backend (onnxruntime_onnx, …)
    metadata: dict[str, Any]
    digest: str
    config: dict[str, Any]
    versions: list[Any]
    state: str
    message: str | None
    owner: str | None
    created_at: datetime
    updated_at: datetime


class JobIn(Strict):
    pipeline: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    priority: Priority = "normal"
    payload_id: str | None = Field(default=None, max_length=36)     # input payload (same as input_payloads=[id])
    input_payloads: list[str] = Field(default_factory=list, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = Field(default=None, gt=0, le=7 * 86400)


class JobStartIn(Strict):
    variables: dict[str, str | int | float | bool] = Field(default_factory=dict)


class OperatorOut(BaseModel):
    name: str
    state: str
    status: str
    exit_code: int | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class JobOut(BaseModel):
    id: str
    clara_id: str                      # the same id as Clara's API spells it (32 hex digits)
    name: str
    pipeline: str
    pipeline_id: str
    payload_id: str                    # the job's own payload: its input/ and its operators' outputs
    input_payloads: list[str]          # payloads its input/ was taken from
    priority: str
    state: str
    status: str
    started: bool
    cancel_requested: bool
    message: str | None
    attempts: int
    timeout: float
    variables: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    operators: list[OperatorOut]


class PayloadIn(Strict):
    metadata: dict[str, str] = Field(default_factory=dict)


class PayloadOut(BaseModel):
    id: str
    clara_id: str
    type: str                          # pipeline (a job's own) | reusable
    job_id: str | None = None          # the job whose payload it is
    metadata: dict[str, Any]
    created_at: datetime
    deleted: bool


class FileOut(BaseModel):
    path: str
    size: int


class ExportTaskIn(Strict):
    job_id: str = Field(min_length=1, max_length=36)
    agent: str = Field(min_length=1, max_length=64)
    destination: str | None = Field(default=None, max_length=255)
    files: list[str] = Field(default_factory=list, max_length=100_000)
    max_attempts: int = Field(default=5, ge=1, le=100)


class ExportResultIn(Strict):
    message: str | None = Field(default=None, max_length=100_000)
    file_status: dict[str, str] = Field(default_factory=dict)


class ExportTaskOut(BaseModel):
    id: str
    job_id: str
    agent: str
    destination: str | None
    files: list[str]
    file_status: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    message: str | None
    created_at: datetime
    updated_at: datetime


class LockIn(Strict):
    holder: str = Field(min_length=1, max_length=255)


class LockOut(BaseModel):
    scope: str
    lock_id: str
    holder: str
    created_at: datetime
    age_seconds: float
