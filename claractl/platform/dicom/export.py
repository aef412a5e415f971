"""The DICOM SCU export agent: delivers export tasks to their destinations.

Takes ExportTask rows whose agent is "ClaraSCU" (Clara's name; "dicom" is accepted too), state
PENDING and next_attempt_at due; marks them IN_PROGRESS, C-STOREs every DICOM file of
`task.files` (relative to the job's payload dir; a directory means every file under it),
records per-file status, and marks SUCCEEDED — or retries failed files with exponential
back-off until `max_attempts`, then FAILED. Tasks IN_PROGRESS at start were interrupted by a
crash of this agent and go back to PENDING.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from claractl.platform.audit import trail
from claractl.platform.config import PlatformConfig
from claractl.platform.dicom.access import AccessControl
from claractl.platform.dicom.scu import Peer, SendResult, is_dicom_file, send_files
from claractl.platform.dicom.tls import TlsConfigError, client_context
from claractl.platform.store import Store
from claractl.platform.store.models import AuditOutcome, ExportState, ExportTask, Job, JobState
from claractl.platform.store.retry import retry_transient

log = logging.getLogger("claractl.dicom.export")
AGENT_NAMES = ("clarascu", "dicom")
SUCCESS_PREFIX = "SUCCESS"
UNREACHABLE_FOR = timedelta(hours=24)     # a destination down this long: the task fails


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:   # SQLite returns naive datetimes
        return t.replace(tzinfo=timezone.utc)
    return t


class DicomExportAgent:
    def __init__(self, config: PlatformConfig, store: Store, *, access: AccessControl | None = None,
                 associations: int = 4, poll_interval: float = 1.0, backoff_base: float = 10.0,
                 backoff_max: float = 600.0) -> None:
        self.config = config
        self.store = store
        self.access = access or AccessControl(store)
        self.associations = associations
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.calling_ae = config.dicom.ae_title
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stats = {"tasks_succeeded": 0, "tasks_failed": 0, "attempts_failed": 0, "files_sent": 0}
        self._current: str | None = None
        self._tls_context: ssl.SSLContext | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._recover()
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="dicom-export", daemon=True)
            self._thread.start()
            self._unsubscribe = self.store.on_commit("exports", self.wake)   # see store/changes.py

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._unsubscribe()
            self._stop.set()
            self._wake.set()
            thread.join(timeout=300)

    def wake(self) -> None:
        """Look for due tasks now instead of at the next poll."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"running": self._thread is not None, "current_task": self._current, **self._stats}

    def _recover(self) -> None:
        with self.store.session() as s:
            s.execute(update(ExportTask)
                      .where(func.lower(ExportTask.agent).in_(AGENT_NAMES),
                             ExportTask.state == ExportState.IN_PROGRESS)
                      .values(state=ExportState.PENDING, next_attempt_at=_now()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while not self._stop.is_set() and self.run_once():
                    pass
            except Exception as exc:     # store hiccup: log, keep polling
                log.error("export agent: %s", exc)
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _claim(self) -> str | None:
        now = _now()
        with self.store.session() as s:
            # Only tasks of stopped jobs: a job re-run after a crash rewrites its outputs, which must
            # not be sent half-written (its register-results finds this task again, see exports.py).
            candidates = s.scalars(
                select(ExportTask.id).outerjoin(Job, Job.id == ExportTask.job_id)
                .where(func.lower(ExportTask.agent).in_(AGENT_NAMES), ExportTask.state == ExportState.PENDING,
                       (ExportTask.next_attempt_at.is_(None)) | (ExportTask.next_attempt_at <= now),
                       Job.state.is_(None) | (Job.state == JobState.STOPPED))
                .order_by(ExportTask.created_at).limit(5)).all()
            for task_id in candidates:
                claimed = s.execute(update(ExportTask)
                                    .where(ExportTask.id == task_id, ExportTask.state == ExportState.PENDING)
                                    .values(state=ExportState.IN_PROGRESS, updated_at=now)).rowcount
                if claimed == 1:
                    return task_id
        return None

    def run_once(self) -> bool:
        """Process one due task; False when none was due."""
        task_id = self._claim()
        if task_id is None:
            return False
        with self._lock:
            self._current = task_id
        try:
            self._process(task_id)
        except Exception as exc:     # e.g. the store went away mid-task: claimable again, not lost
            log.error("export task %s interrupted: %s", task_id, exc)
            self._write(task_id, state=ExportState.PENDING, message=f"interrupted, tried again: {exc}",
                        next_attempt_at=_now() + timedelta(seconds=self.backoff_base))
        finally:
            with self._lock:
                self._current = None
        return True

    def _files_of(self, task: ExportTask, payload_dir: Path) -> tuple[dict[str, Path], dict[str, str]]:
        """(relative name → path of each DICOM file, relative name → problem for unusable entries)."""
        found: dict[str, Path] = {}
        problems: dict[str, str] = {}
        root = payload_dir.resolve()
        for entry in task.files or []:
            p = (payload_dir / str(entry).lstrip("/")).resolve()
            if p != root and root not in p.parents:
                problems[str(entry)] = "FAILED: path outside the job payload"
                continue
            if p.is_dir():
                for q in sorted(x for x in p.rglob("*") if x.is_file()):
                    if is_dicom_file(q):
                        found[str(q.relative_to(root))] = q
            elif p.is_file():
                if is_dicom_file(p):
                    found[str(p.relative_to(root))] = p
                else:
                    problems[str(entry)] = "SKIPPED: not a DICOM file"
            else:
                problems[str(entry)] = "FAILED: no such file in the job payload"
        return found, problems

    def _process(self, task_id: str) -> None:
        with self.store.session() as s:
            task = s.get(ExportTask, task_id)
            job = s.get(Job, task.job_id)
            payload_dir = self.config.payloads_dir / job.payload_id if job else None
            file_status = dict(task.file_status or {})
            destination = task.destination
            attempts = task.attempts + 1
            max_attempts = task.max_attempts
            created_at = _aware(task.created_at) or _now()
            files, problems = self._files_of(task, payload_dir) if payload_dir else ({}, {})
        file_status.update(problems)
        hard_problem = None
        if payload_dir is None:
            hard_problem = "job of this task does not exist"
        elif not files:
            hard_problem = "no DICOM files to send" + (f" ({'; '.join(f'{k}: {v}' for k, v in problems.items())})"
                                                     if problems else "")
        if hard_problem:          # retrying cannot help
            self._finish(task_id, ExportState.FAILED, attempts, file_status, hard_problem)
            return
        self.access.invalidate()
        dest = self.access.destination(destination or "")
        if dest is None:
            self._retry_or_fail(task_id, attempts, max_attempts, file_status,
                                f"destination {destination!r} is not configured")
            return
        todo = {k: p for k, p in files.items() if not str(file_status.get(k, "")).startswith(SUCCESS_PREFIX)}
        try:
            peer = Peer(dest.ae_title, dest.host, dest.port, self._tls() if dest.tls else None)
        except TlsConfigError as exc:
            self._retry_or_fail(task_id, attempts, max_attempts, file_status, str(exc))
            return
        names = {p: k for k, p in todo.items()}
        progress = _Progress(self.store, task_id)
        results: list[SendResult] = send_files(peer, list(todo.values()), calling_ae=self.calling_ae,
                                               associations=self.associations,
                                               on_done=lambda r: progress.note(names[r.path], r))
        progress.flush()
        by_path = {r.path: r for r in results}
        sent = 0
        for name, path in todo.items():
            r = by_path[path]
            file_status[name] = f"{SUCCESS_PREFIX} {r.message}" if r.ok else f"FAILED {r.message}"
            sent += r.ok
        with self._lock:
            self._stats["files_sent"] += sent
        failed = [k for k in files if not str(file_status.get(k, "")).startswith(SUCCESS_PREFIX)]
        if failed and all(_unreachable(r) for r in results):
            self._wait_for_destination(task_id, attempts - 1, created_at, file_status,
                                       f"{destination} ({peer}) unreachable: {results[0].message}")
            return
        if not failed:
            self._finish(task_id, ExportState.SUCCEEDED, attempts, file_status,
                         f"{len(files)} files sent to {destination} ({peer})")
        else:
            first = file_status[failed[0]]
            self._retry_or_fail(task_id, attempts, max_attempts, file_status,
                                f"{len(failed)} of {len(files)} files not accepted by {destination} ({peer}): {first}")

    def _tls(self) -> ssl.SSLContext:
        """The client context for TLS destinations, made once (the settings need a restart to change)."""
        if self._tls_context is None:
            self._tls_context = client_context(self.config.dicom)
        return self._tls_context

    def _retry_or_fail(self, task_id: str, attempts: int, max_attempts: int, file_status: dict, message: str) -> None:
        with self._lock:
            self._stats["attempts_failed"] += 1
        if attempts >= max_attempts:
            self._finish(task_id, ExportState.FAILED, attempts, file_status,
                         f"gave up after {attempts} attempts: {message}")
            return
        delay = min(self.backoff_max, self.backoff_base * (2 ** (attempts - 1)))
        self._write(task_id, state=ExportState.PENDING, attempts=attempts, file_status=file_status,
                    message=f"attempt {attempts} failed, next in {delay:.0f}s: {message}",
                    next_attempt_at=_now() + timedelta(seconds=delay))
        log.warning("export task %s: %s", task_id, message)

    def _wait_for_destination(self, task_id: str, attempts: int, created_at: datetime, file_status: dict,
                              message: str) -> None:
        """Nothing reached the destination (down, or busy): not an attempt against `max_attempts`
        (a PACS down for an hour must not lose results); tried again after half the time the task
        has waited so far (backoff_base … backoff_max), given up after UNREACHABLE_FOR."""
        waited = _now() - created_at
        if waited >= UNREACHABLE_FOR:
            self._finish(task_id, ExportState.FAILED, attempts + 1, file_status,
                         f"gave up after {waited.total_seconds() / 3600:.1f} h: {message}")
            return
        delay = min(self.backoff_max, max(self.backoff_base, waited.total_seconds() / 2))
        with self._lock:
            self._stats["attempts_failed"] += 1
        self._write(task_id, state=ExportState.PENDING, file_status=file_status,
                    message=f"waiting for the destination, next try in {delay:.0f}s: {message}",
                    next_attempt_at=_now() + timedelta(seconds=delay))
        log.warning("export task %s: %s", task_id, message)

    def _finish(self, task_id: str, state: str, attempts: int, file_status: dict, message: str) -> None:
        self._write(task_id, state=state, attempts=attempts, file_status=file_status, message=message,
                    next_attempt_at=None, audit="delivered" if state == ExportState.SUCCEEDED else "failed")
        with self._lock:
            self._stats["tasks_succeeded" if state == ExportState.SUCCEEDED else "tasks_failed"] += 1
        (log.info if state == ExportState.SUCCEEDED else log.error)("export task %s %s: %s", task_id, state, message)


    def _write(self, task_id: str, audit: str | None = None, **fields: Any) -> None:
        """The outcome of an attempt, written even if the store is away for a while (files the
        destination acknowledged must not be sent again because their record was lost); with
        `audit`, the export's audit event in the same transaction."""
        def write() -> None:
            with self.store.session() as s:
                task = s.get(ExportTask, task_id)
                for key, value in fields.items():
                    setattr(task, key, value)
                if audit:
                    self._audit(s, task, audit)
        retry_transient(write, stopping=self._stop, what=f"export task {task_id}")

    def _audit(self, s, task: ExportTask, action: str) -> None:
        job = s.get(Job, task.job_id)
        meta = (job.metadata_ if job else None) or {}
        dest = self.access.destination(task.destination or "")
        sent = sum(str(v).startswith(SUCCESS_PREFIX) for v in (task.file_status or {}).values())
        detail = {"files": sent, "attempts": task.attempts, "task": task.id}
        if dest is not None:
            detail.update(ae_title=dest.ae_title, address=f"{dest.host}:{dest.port}", tls=dest.tls)
        if action == "failed":
            detail["reason"] = task.message
        trail.record(s, "export", action, outcome=AuditOutcome.SUCCESS if action == "delivered"
                     else AuditOutcome.SERIOUS_FAILURE, actor=self.calling_ae, target=task.destination or "",
                     study_uid=meta.get("study_uid"), patient_id=meta.get("patient_id"), job_id=task.job_id,
                     detail=detail)


def _unreachable(result: SendResult) -> bool:
    """No association: the destination is down, or busy (transient A-ASSOCIATE-RJ)."""
    return result.status is None and (result.message.startswith("cannot connect")
                                      or result.message.startswith("association rejected (result 2"))


class _Progress:
    """Records each file the destination acknowledged as soon as it is (at most every 0.25 s), so
    an agent killed mid-task re-sends only what was not yet acknowledged."""

    INTERVAL = 0.25

    def __init__(self, store: Store, task_id: str) -> None:
        self.store = store
        self.task_id = task_id
        self.pending: dict[str, str] = {}
        self.last = 0.0

    def note(self, name: str, result: SendResult) -> None:
        if not result.ok:
            return
        self.pending[name] = f"{SUCCESS_PREFIX} {result.message}"
        if time.monotonic() - self.last >= self.INTERVAL:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        self.last = time.monotonic()
        try:
            with self.store.session() as s:
                task = s.get(ExportTask, self.task_id)
                task.file_status = {**(task.file_status or {}), **pending}
        except Exception as exc:      # the final status is written at the end of the attempt anyway
            log.warning("export task %s: cannot record progress: %s", self.task_id, exc)
