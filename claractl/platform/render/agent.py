"""The `renderserver` export agent: publish a job's files to the viewer.

Clara's register-volume-images-for-rendering operator hands the render server a job's volumes;
here it creates an export task with agent `renderserver` listing payload-relative files. The
agent checks each file, records it in the job's render index (volume or label map; DICOM files
are recorded too and converted on first view) and marks the task SUCCEEDED with a status per
file. Missing files are retried with back-off (the task's attempts / max_attempts), then FAILED.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import or_, select

from claractl.platform.store import Store
from claractl.platform.store.models import ExportState, ExportTask, Job, utcnow
from claractl.platform.render.volumes import VolumeFinder, classify_nifti, is_viewable

AGENT = "renderserver"
log = logging.getLogger("claractl.render.agent")


def _inside(root: Path, rel: str) -> Path | None:
    path = (root / rel).resolve()
    return path if path.is_relative_to(root.resolve()) else None


def index_task(store: Store, finder: VolumeFinder, task_id: str) -> str:
    """Process one claimed task; returns its new state."""
    with store.session() as s:
        task = s.get(ExportTask, task_id)
        job = s.get(Job, task.job_id)
        files, payload_id, job_id = list(task.files or []), job.payload_id, job.id
    root = finder.payloads_dir / payload_id
    statuses: dict[str, str] = {}
    entries: list[dict[str, str]] = []
    missing = []
    for rel in files:
        path = _inside(root, rel)
        if path is None:
            statuses[rel] = "rejected: outside the job payload"
        elif path.is_dir():
            # A folder (e.g. the dicom-reader output): publish every NIfTI / MetaImage in it.
            found = sorted(p for p in path.rglob("*") if is_viewable(p))
            for p in found:
                entries.append({"path": p.relative_to(root.resolve()).as_posix(), "kind": classify_nifti(root.resolve(), p)})
            statuses[rel] = f"indexed {len(found)} volume file(s)" if found else "no NIfTI files in folder"
        elif not path.is_file():
            statuses[rel] = "missing"
            missing.append(rel)
        elif is_viewable(path):
            try:
                kind = classify_nifti(root.resolve(), path)
            except Exception as exc:  # nibabel / SimpleITK raise several types for damaged files
                statuses[rel] = f"unreadable volume: {exc}"
                continue
            entries.append({"path": path.relative_to(root.resolve()).as_posix(), "kind": kind})
            statuses[rel] = f"indexed as {kind}"
        elif path.suffix == ".json":
            statuses[rel] = "indexed (segment names)"     # sidecar read beside its label map
        else:
            kind, statuses[rel] = _dicom_kind(path)
            entries.append({"path": path.relative_to(root.resolve()).as_posix(), "kind": kind})
    if entries:
        finder.write_index(job_id, entries)
    with store.session() as s:
        task = s.get(ExportTask, task_id)
        task.file_status = statuses
        task.attempts = (task.attempts or 0) + 1
        if missing and task.attempts < task.max_attempts:
            task.state = ExportState.PENDING
            task.next_attempt_at = utcnow() + timedelta(seconds=min(60, 2 ** task.attempts))
            task.message = f"{len(missing)} file(s) not there yet: {', '.join(missing[:3])}"
        elif missing:
            task.state = ExportState.FAILED
            task.message = f"{len(missing)} file(s) missing after {task.attempts} attempts: {', '.join(missing[:3])}"
        else:
            task.state = ExportState.SUCCEEDED
            task.message = f"published {len(entries)} file(s) to the viewer"
        return task.state


def _dicom_kind(path: Path) -> tuple[str, str]:
    """(index kind, file status) for a file that is not NIfTI."""
    from claractl.platform.render.dicom_volume import SKIP_MODALITIES, modality

    found = modality(path)
    if found is None:
        return "other", "indexed (not viewable)"
    if found == "SEG":
        return "other", "indexed (DICOM SEG: the viewer shows the job's label map)"
    if found in SKIP_MODALITIES:
        return "other", f"indexed (DICOM {found}: not viewable)"
    return "dicom", "indexed (DICOM image: converted to NIfTI when viewed)"


def claim_next(store: Store) -> str | None:
    """Take one due PENDING renderserver task (IN_PROGRESS), so a second agent skips it."""
    with store.session() as s:
        task = s.scalars(
            select(ExportTask)
            .where(ExportTask.agent == AGENT, ExportTask.state == ExportState.PENDING)
            .where(or_(ExportTask.next_attempt_at.is_(None), ExportTask.next_attempt_at <= utcnow()))
            .order_by(ExportTask.created_at)
            .limit(1)
        ).first()
        if task is None:
            return None
        task.state = ExportState.IN_PROGRESS
        return task.id


class RenderServerAgent:
    def __init__(self, store: Store, finder: VolumeFinder, interval: float = 0.5) -> None:
        self.store, self.finder, self.interval = store, finder, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.last_error: str | None = None

    def run_once(self) -> int:
        done = 0
        while (task_id := claim_next(self.store)) is not None:
            try:
                index_task(self.store, self.finder, task_id)
            except Exception as exc:   # keep the agent alive; the task is retried
                log.exception("renderserver task %s failed", task_id)
                self.last_error = str(exc)
                with self.store.session() as s:
                    task = s.get(ExportTask, task_id)
                    task.attempts = (task.attempts or 0) + 1
                    task.state = ExportState.FAILED if task.attempts >= task.max_attempts else ExportState.PENDING
                    task.message = f"indexing failed: {exc}"
            done += 1
        self.published += done
        return done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:   # store briefly unavailable: try again next tick
                self.last_error = str(exc)
                log.warning("renderserver agent: %s", exc)

    def release_abandoned(self) -> None:
        """Tasks left IN_PROGRESS by a crashed platform go back to the queue (one agent per platform)."""
        with self.store.session() as s:
            for task in s.scalars(
                select(ExportTask).where(ExportTask.agent == AGENT, ExportTask.state == ExportState.IN_PROGRESS)
            ):
                task.state = ExportState.PENDING

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self.release_abandoned()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="renderserver-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())
