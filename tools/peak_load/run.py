"""One peak-hour run: PACS, platform, senders, sampler; optional faults while it runs; then wait
until every job and export has finished and check that nothing was lost."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from claractl.platform.dicom.synthetic_studies import StudyFactory
from claractl.platform.store import Store
from claractl.platform.store.models import ExportState, ExportTask, Job, JobState

from .mix import PlannedStudy, schedule
from .observe import Sampler, StudyRecord, records
from .pacs import OrthancPacs
from .rig import CALLED_AE, PlatformRig
from .senders import SenderPool, SentStudy
from .verify import problems


@dataclass
class Run:
    """What a fault injector gets while the load runs."""
    rig: PlatformRig
    pacs: OrthancPacs
    pool: SenderPool
    t0: float                                  # time.time() at the start of sending
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(f"{time.time() - self.t0:7.1f} s  {text}")


@dataclass
class Result:
    plan: list[PlannedStudy]
    records: list[StudyRecord]
    samples: list[dict[str, Any]]
    t0: float
    problems: list[str]
    notes: list[str]
    drained_after: float                       # s from the last planned arrival until all was done


def run_peak(work_dir: Path, *, multiplier: float, duration: float, database: str = "sqlite", senders: int = 4,
             scale: dict[str, float] | None = None, seed: int = 1, workers: int = 2, group_timeout: float = 5.0,
             keep_payloads: bool = False, dicom: dict | None = None, drain_timeout: float = 900,
             during: Callable[[Run], None] | None = None, dashboard: bool = False) -> Result:
    plan = schedule(multiplier, duration, seed)
    sends = Path(tempfile.mkdtemp(prefix="peak-send-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    pacs = OrthancPacs(work_dir / "pacs").start()
    rig = PlatformRig(work_dir, database, workers=workers, group_timeout=group_timeout,
                      payload_retention=3600 * 24 if keep_payloads else 30.0, dicom=dicom, dashboard=dashboard)
    sampler = None
    try:
        rig.start()
        pool = SenderPool(StudyFactory(scale=scale, seed=seed), rig.dicom_port, CALLED_AE, senders, sends)
        rig.configure(pacs.ae_title, pacs.dicom_port, pool.aets)
        sampler = Sampler(rig.config.database_url, lambda: rig.pid, lambda: _dicom_status(rig)).start()
        run = Run(rig, pacs, pool, time.time())
        injector = threading.Thread(target=during, args=(run,), name="faults", daemon=True) if during else None
        if injector:
            injector.start()
        studies = pool.run(plan, until=time.monotonic() + duration + drain_timeout)
        if injector:
            injector.join()
        arrivals_end = run.t0 + (plan[-1].due if plan else 0)
        _drain(rig, drain_timeout)
        drained_after = time.time() - arrivals_end
        samples = sampler.stop()
        sampler = None
        store = Store(rig.config.database_url)
        try:
            recs = records(store, studies)
        finally:
            store.dispose()
        found = problems(recs, pacs.sop_uids(), rig.config.payloads_dir if keep_payloads else None)
        return Result(plan, recs, samples, run.t0, found, run.notes, drained_after)
    finally:
        if sampler is not None:
            sampler.stop()
        rig.stop()
        pacs.close()
        shutil.rmtree(sends, ignore_errors=True)


def _dicom_status(rig: PlatformRig) -> dict:
    return rig.client._json("GET", "/api/v1/dicom/status")


def _drain(rig: PlatformRig, timeout: float) -> None:
    """Until no group is open, no job waits or runs and no export task is pending (or `timeout`)."""
    store = Store(rig.config.database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with store.session() as s:
                    busy = s.scalar(select(func.count()).select_from(Job).where(Job.state != JobState.STOPPED))
                    busy += s.scalar(select(func.count()).select_from(ExportTask).where(
                        ExportTask.state.in_([ExportState.PENDING, ExportState.IN_PROGRESS])))
                busy += _dicom_status(rig).get("groups_open", 0)
                if busy == 0:
                    return
            except Exception:
                pass
            time.sleep(1)
    finally:
        store.dispose()


__all__ = ["run_peak", "Run", "Result", "SentStudy"]
