"""Writing the audit trail (table `audit_events`, models.AuditEvent).

Two ways in:

- `record(session, …)`: inside the transaction that makes the change it describes (a job
  stopped, an export delivered, a study handed to a job) — the event exists exactly when the
  change does;
- `emit(store, …)`: for what happens outside any transaction (an association accepted or
  rejected, an API request answered): queued in memory and written by a background thread in
  batches, so that the DICOM and HTTP paths never wait for the store; while the store is away the
  events wait and are written when it is back (at most MAX_QUEUED; beyond that the oldest are
  dropped and the drop is logged).

Nothing of the pixel data, and of the patient only the Patient ID — what a DICOM audit message
(PS3.15 A.5) carries.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from claractl.platform.store.models import AuditEvent, AuditOutcome, utcnow
from claractl.platform.store.retry import retry_transient

if TYPE_CHECKING:       # the store's modules record events: no import of the store package here
    from claractl.platform.store import Store

log = logging.getLogger("claractl.audit")
MAX_QUEUED = 100_000
FLUSH_INTERVAL = 0.2


def _event(kind: str, action: str, *, outcome: int = AuditOutcome.SUCCESS, actor: str = "", source: str = "",
           target: str = "", study_uid: str | None = None, patient_id: str | None = None,
           job_id: str | None = None, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event's column values (time stamped now), cut to the columns' sizes."""
    return dict(at=utcnow(), kind=kind, action=action, outcome=outcome, actor=actor[:255], source=source[:255],
                target=target[:512], study_uid=(study_uid or None) and study_uid[:64],
                patient_id=(patient_id or None) and patient_id[:64], job_id=job_id, detail=detail or {})


def record(session: Session, kind: str, action: str, **fields: Any) -> None:
    """Add an event to the caller's transaction."""
    session.add(AuditEvent(**_event(kind, action, **fields)))


def record_job(session: Session, job: Any, action: str, *, status: str | None = None, actor: str = "engine",
               detail: dict[str, Any] | None = None) -> None:
    """A job event, with the study and patient its DICOM origin names; `status` (Clara's) sets the
    outcome: HEALTHY success, CANCELED minor failure, FAULTED/TERMINATED/EVICTED serious."""
    meta = job.metadata_ or {}
    outcome = (AuditOutcome.SUCCESS if status in (None, "HEALTHY")
               else AuditOutcome.MINOR_FAILURE if status == "CANCELED" else AuditOutcome.SERIOUS_FAILURE)
    extra = {"status": status, "reason": job.message} if status and status != "HEALTHY" else (
        {"status": status} if status else {})
    record(session, "job", action, outcome=outcome, actor=actor, target=job.pipeline_name,
           study_uid=meta.get("study_uid"), patient_id=meta.get("patient_id"), job_id=job.id,
           detail={"pipeline": job.pipeline_name, **extra, **(detail or {})})


def emit(store: "Store", kind: str, action: str, **fields: Any) -> None:
    """Queue an event for the store's background writer (made on first use)."""
    writer = getattr(store, "_audit_writer", None)
    if writer is None:
        with _writers_lock:
            writer = getattr(store, "_audit_writer", None)
            if writer is None:
                writer = store._audit_writer = _Writer(store)
    writer.put(_event(kind, action, **fields))


def flush(store: "Store", timeout: float = 10.0) -> None:
    """Until every emitted event is written (tests, shutdown)."""
    writer = getattr(store, "_audit_writer", None)
    if writer is not None:
        writer.flush(timeout)


_writers_lock = threading.Lock()


class _Writer:
    def __init__(self, store: "Store") -> None:
        self.store = store
        self.queue: deque[dict[str, Any]] = deque()      # column values: rows are made per write attempt
        self.cond = threading.Condition()
        self.dropped = 0
        self.busy = False
        threading.Thread(target=self._run, name="audit-writer", daemon=True).start()

    def put(self, event: dict[str, Any]) -> None:
        with self.cond:
            if len(self.queue) >= MAX_QUEUED:
                self.queue.popleft()
                self.dropped += 1
                if self.dropped in (1, 1000, 100_000):
                    log.error("audit trail: the store is not taking events; %d dropped so far", self.dropped)
            self.queue.append(event)
            self.cond.notify()

    def flush(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: not self.queue and not self.busy, timeout)

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.queue)
                self.cond.wait(FLUSH_INTERVAL)          # gather a batch
                batch = list(self.queue)
                self.queue.clear()
                self.busy = True
            try:
                retry_transient(lambda: self._write(batch), what="audit trail")
            except Exception:       # not the store being away: a bug; keep the process alive
                log.exception("audit trail: %d events could not be written", len(batch))
            with self.cond:
                self.busy = False
                self.cond.notify_all()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.store.session() as s:
            s.add_all(AuditEvent(**values) for values in batch)
