"""What the platform did under the load: per-stage latency of every study, read from the store,
and samples of its CPU, memory and queues over time."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psutil
from sqlalchemy import func, select

from claractl.platform.store import Store
from claractl.platform.store.models import ExportState, ExportTask, Job, JobState

from .senders import SentStudy

STAGES = ("send", "close", "queue", "run", "export", "total")
STAGE_MEANING = {
    "send": "first C-STORE → last acknowledged (the sender's association)",
    "close": "last instance → group closed, job created (includes the AE's group timeout)",
    "queue": "job created → operators started",
    "run": "operators started → job stopped",
    "export": "job stopped → PACS acknowledged the result",
    "total": "last instance acknowledged → result acknowledged by the PACS",
}


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


@dataclass
class StudyRecord:
    study: SentStudy
    jobs: list[dict] = field(default_factory=list)       # id, state, status, created/started/stopped, instances
    exports: list[dict] = field(default_factory=list)    # id, job_id, state, updated, file names

    def stages(self) -> dict[str, float]:
        """Seconds per stage, for a study whose last job exported; {} otherwise."""
        s = self.study
        if s.done is None or not self.jobs:
            return {}
        job = max(self.jobs, key=lambda j: j["created"])
        done = [e for e in self.exports if e["job_id"] == job["id"] and e["state"] == ExportState.SUCCEEDED]
        if job["started"] is None or job["stopped"] is None or not done:
            return {}
        exported = max(e["updated"] for e in done)
        return {"send": s.done - s.started, "close": job["created"] - s.done, "queue": job["started"] - job["created"],
                "run": job["stopped"] - job["started"], "export": exported - job["stopped"], "total": exported - s.done}


def records(store: Store, studies: list[SentStudy]) -> list[StudyRecord]:
    """Each study with the jobs made from it and their export tasks."""
    by_uid = {s.study_uid: StudyRecord(s) for s in studies}
    with store.session() as s:
        for job in s.scalars(select(Job)):
            rec = by_uid.get((job.metadata_ or {}).get("study_uid"))
            if rec is None:
                continue
            rec.jobs.append({"id": job.id, "state": job.state, "status": job.status, "payload_id": job.payload_id,
                             "created": _ts(job.created_at), "started": _ts(job.started_at),
                             "stopped": _ts(job.stopped_at), "instances": (job.metadata_ or {}).get("instances", 0),
                             "message": job.message})
        jobs_to_rec = {j["id"]: rec for rec in by_uid.values() for j in rec.jobs}
        for task in s.scalars(select(ExportTask).where(ExportTask.job_id.in_(list(jobs_to_rec)))):
            jobs_to_rec[task.job_id].exports.append({
                "id": task.id, "job_id": task.job_id, "state": task.state, "updated": _ts(task.updated_at),
                "files": list(task.files or []), "attempts": task.attempts, "message": task.message,
                "destination": task.destination})
    return list(by_uid.values())


class Sampler:
    """Every `interval` s: the platform process's CPU (its own and its finished children's, i.e. the
    operators) and memory, the whole machine's CPU, and the queues (jobs waiting and running, export
    tasks waiting, groups open). Survives the platform being killed (samples are then skipped)."""

    def __init__(self, store_url: str, pid_of, dicom_status, interval: float = 2.0) -> None:
        self.store = Store(store_url)
        self.pid_of = pid_of                  # () → the platform's pid now (it changes on restart)
        self.dicom_status = dicom_status      # () → GET /dicom/status document
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._last: tuple[int, float, float] | None = None     # (pid, cpu seconds, wall)

    def start(self) -> "Sampler":
        psutil.cpu_percent()
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        self._thread.join()
        self.store.dispose()
        return self.samples

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(self._sample())
            except Exception:      # the platform or its store is away (fault tests): no sample
                self._last = None

    def _sample(self) -> dict[str, Any]:
        now = time.time()
        out: dict[str, Any] = {"t": now, "machine_cpu": psutil.cpu_percent()}
        pid = self.pid_of()
        if pid:
            p = psutil.Process(pid)
            t = p.cpu_times()
            cpu = t.user + t.system + t.children_user + t.children_system
            if self._last and self._last[0] == pid:
                out["platform_cpu"] = 100.0 * (cpu - self._last[1]) / (now - self._last[2])
            self._last = (pid, cpu, now)
            out["platform_rss_mb"] = p.memory_info().rss / 2 ** 20
        with self.store.session() as s:
            out["jobs_waiting"] = s.scalar(select(func.count()).select_from(Job).where(
                Job.state == JobState.PENDING, Job.started.is_(True)))
            out["jobs_running"] = s.scalar(select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING))
            out["exports_waiting"] = s.scalar(select(func.count()).select_from(ExportTask).where(
                ExportTask.state.in_([ExportState.PENDING, ExportState.IN_PROGRESS])))
        out["groups_open"] = self.dicom_status().get("groups_open")
        return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def windows(recs: list[StudyRecord], samples: list[dict], t0: float, width: float) -> list[dict[str, Any]]:
    """Per window of `width` s (by when a study's last instance was acknowledged): studies,
    instances/s, stage percentiles, and the samples' CPU, memory and queue depths."""
    out: list[dict[str, Any]] = []
    timed = [(r.study.done - t0, r) for r in recs if r.study.done is not None]
    last = max([t for t, _ in timed] + [s["t"] - t0 for s in samples] + [0.0])
    n = int(last // width) + 1
    for i in range(n):
        lo, hi = i * width, (i + 1) * width
        in_window = [r for t, r in timed if lo <= t < hi]
        stages = [r.stages() for r in in_window]
        stages = [s for s in stages if s]
        row: dict[str, Any] = {"window": i, "from": lo, "studies": len(in_window),
                               "instances_per_s": sum(len(r.study.acknowledged) for r in in_window) / width}
        for stage in STAGES:
            vals = [s[stage] for s in stages]
            row[stage] = {q: percentile(vals, q) for q in (50, 95, 99)} if vals else None
        ws = [s for s in samples if lo <= s["t"] - t0 < hi]

        def agg(key, fn):
            vals = [s[key] for s in ws if s.get(key) is not None]
            return fn(vals) if vals else None

        row.update(platform_cpu=agg("platform_cpu", statistics.mean), machine_cpu=agg("machine_cpu", statistics.mean),
                   rss_mb=agg("platform_rss_mb", max), jobs_waiting=agg("jobs_waiting", max),
                   exports_waiting=agg("exports_waiting", max), groups_open=agg("groups_open", max))
        out.append(row)
    return out
