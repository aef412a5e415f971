"""The job engine: queue, admission, DAG execution through an executor (DESIGN §6).

    engine = Engine(config, store, hook=InferenceHook(config))
    engine.start()      # recovery, then a scheduler thread
    engine.wake()       # something changed (a job was started or canceled): look now
    engine.stop()       # running jobs' operators are killed and the jobs re-queued

With `adopt=True` (a leader-elected engine, docs/kubernetes.md "High availability") and an
executor that can re-attach (kubernetes), `start()` takes over the jobs the previous leader left
RUNNING whose operator Jobs still exist, instead of re-running them, and `stop()` leaves running
operators alone (detach) for the next leader.

The engine meets producers (API, DICOM adapter) only through the store: it polls for PENDING
jobs whose start was requested, highest priority first, then oldest `queued_at`, and admits
them while a worker slot is free (`config.api.workers`) and their demand fits the free
capacity (see capacity.py). The head of the queue is never overtaken (no starvation of big jobs).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from claractl.platform.audit import trail
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.capacity import Resources, job_demand, machine_capacity
from claractl.platform.engine.executor import Executor, LocalExecutor
from claractl.platform.engine.inference_hook import InferenceHook, triton_uris
from claractl.platform.engine.recovery import recover, sweep_payloads
from claractl.platform.engine.runner import JobRunner, Stop
from claractl.platform.engine.services import ServiceManager, launcher_for
from claractl.platform.store import Store
from claractl.platform.store.models import Job, JobState, JobStatus, OperatorRun, utcnow

__all__ = ["Engine", "InferenceHook"]
log = logging.getLogger("claractl.engine")


def executor_for(config: PlatformConfig) -> Executor:
    """engine.executor: local (processes/containers here) or kubernetes (one Job per operator)."""
    if config.engine.executor == "kubernetes":
        from claractl.platform.engine.kubernetes_executor import KubernetesExecutor
        return KubernetesExecutor.from_config(config)
    return LocalExecutor()


class Engine:
    def __init__(self, config: PlatformConfig, store: Store, hook: InferenceHook | None = None,
                 executor: Executor | None = None, poll_interval: float = 0.5,
                 sweep_interval: float = 30.0, adopt: bool = False) -> None:
        self.config = config
        self.store = store
        self.hook = hook or InferenceHook(config)
        self.executor = executor or executor_for(config)
        self.services = ServiceManager(config, launcher_for(config, self.executor))   # PDL `services` of running jobs
        self.poll_interval = poll_interval
        self.sweep_interval = sweep_interval
        self.capacity = machine_capacity(config.engine.cpu, config.engine.memory, config.engine.gpu)
        self.slots = max(1, int(config.api.workers))
        self._lock = threading.Lock()
        self._runners: dict[str, tuple[JobRunner, Resources]] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sweep = 0.0
        self.recovered: dict[str, int] = {}
        self._unsubscribe = lambda: None
        # Re-attach to / leave running operator Jobs across engines (needs an executor that can).
        self.adopt = adopt and hasattr(self.executor, "adoptable")

    # -- component interface -------------------------------------------------------------------
    def start(self) -> None:
        adopted = self.executor.adoptable(self.store) if self.adopt else {}
        self.recovered = recover(self.store, self.config, adopted=frozenset(adopted))
        # Executors with state outside this process (kubernetes: operator Jobs) clean up what a
        # crash left before anything is admitted, so re-runs start from a clean slate.
        after_recovery = getattr(self.executor, "after_recovery", None)
        if after_recovery is not None:
            self.recovered["leftover_jobs_deleted"] = len(after_recovery(self.store, adopted=frozenset(adopted)))
        for job_id, with_jobs in adopted.items():
            self._run_job(job_id, adopt=with_jobs)
        self._stopping.clear()
        self._unsubscribe = self.store.on_commit("jobs", self.wake)    # jobs started in this process: now
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._unsubscribe()
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            runners = [r for r, _ in self._runners.values()]
        for runner in runners:
            runner.request_stop(Stop.DETACH if self.adopt else Stop.SHUTDOWN)
        for runner in runners:
            runner.thread.join(timeout)
        self.services.stop_all()

    def status(self) -> dict[str, Any]:
        with self._lock:
            used = sum((res for _, res in self._runners.values()), Resources())
            running = len(self._runners)
        alive = bool(self._thread and self._thread.is_alive())
        return {"state": "running" if alive else "stopped", "ready": alive, "running_jobs": running,
                "slots": self.slots, "capacity": self.capacity.as_dict(), "in_use": used.as_dict(),
                "executor": self.config.engine.executor, "recovered": self.recovered,
                "services": self.services.status()}

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(self, config: PlatformConfig) -> None:
        """New settings (POST /config/reload): capacity, slots and timeouts apply to jobs admitted
        from now on; running jobs keep going with the settings they started with."""
        with self._lock:
            self.config = config
            self.hook.config = config
            self.services.config = config
            self.capacity = machine_capacity(config.engine.cpu, config.engine.memory, config.engine.gpu)
            self.slots = max(1, int(config.api.workers))
        self.wake()

    # -- scheduling ----------------------------------------------------------------------------
    def platform_env(self) -> dict[str, str]:
        env = triton_uris(self.config)
        env["CLARA_API_URL"] = self.config.api_url
        if self.config.api_token:
            env["CLARA_API_TOKEN"] = self.config.api_token
        return env

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._forward_cancels()
                self._admit()
                self.services.sweep()
                if time.monotonic() - self._last_sweep > self.sweep_interval:
                    self._last_sweep = time.monotonic()
                    sweep_payloads(self.store, self.config)
            except Exception:
                log.exception("engine loop error (retrying)")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _forward_cancels(self) -> None:
        with self.store.session() as s:
            ids = list(s.scalars(select(Job.id).where(Job.cancel_requested.is_(True), Job.state == JobState.RUNNING)))
        with self._lock:
            for job_id in ids:
                entry = self._runners.get(job_id)
                if entry:
                    entry[0].request_stop(Stop.CANCEL)

    def _admit(self) -> None:
        with self._lock:
            free_slots = self.slots - len(self._runners)
            free = self.capacity - sum((res for _, res in self._runners.values()), Resources())
        if free_slots <= 0:
            return
        admitted: list[tuple[str, Resources]] = []
        with self.store.session() as s:
            queue = s.scalars(
                select(Job).where(Job.state == JobState.PENDING, Job.started.is_(True))
                .order_by(Job.priority.desc(), Job.queued_at.asc(), Job.created_at.asc())
                .limit(free_slots * 4 + 8)
                # PostgreSQL: a concurrent cancel waits for this admission (and then sees RUNNING);
                # SQLite serialises writers anyway and ignores the clause.
                .with_for_update()
            )
            for job in queue:
                if free_slots <= 0:
                    break
                if job.cancel_requested:
                    self._cancel_queued(job)
                    continue
                demand = job_demand(job.definition, self.capacity)
                if not demand.fits_in(free):
                    break            # the head waits; nobody overtakes it
                job.state = JobState.RUNNING
                job.started_at = utcnow()
                job.attempts = (job.attempts or 0) + 1
                trail.record_job(s, job, "started", detail={"attempt": job.attempts})
                free = free - demand
                free_slots -= 1
                admitted.append((job.id, demand))
        for job_id, demand in admitted:
            self._run_job(job_id, demand)

    def _run_job(self, job_id: str, demand: Resources | None = None, adopt: set[str] | None = None) -> None:
        if demand is None:               # an adopted job: admitted by the previous leader
            with self.store.session() as s:
                demand = job_demand(s.get(Job, job_id).definition, self.capacity)
        runner = JobRunner(job_id, self.store, self.config, self.executor, self.hook,
                           self.platform_env(), self._finished, services=self.services, adopt=adopt)
        with self._lock:
            self._runners[job_id] = (runner, demand)
        runner.start()

    @staticmethod
    def _cancel_queued(job: Job) -> None:
        job.state, job.status, job.stopped_at = JobState.STOPPED, JobStatus.CANCELED, utcnow()
        trail.record_job(object_session(job), job, "stopped", status=JobStatus.CANCELED)
        job.message = "canceled by request"
        for run in job.operators:
            run.state, run.status = JobState.STOPPED, JobStatus.CANCELED

    def _finished(self, job_id: str) -> None:
        with self._lock:
            self._runners.pop(job_id, None)
        self._wake.set()


def cancel_job(store: Store, job_id: str) -> Job | None:
    """Request cancel (the API's side). A job not yet running stops at once; a running one is
    stopped by the engine, which sees `cancel_requested` on its next tick."""
    with store.session() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None:
            return None
        if job.state == JobState.PENDING:
            Engine._cancel_queued(job)
        elif job.state == JobState.RUNNING:
            job.cancel_requested = True
        s.flush()
        s.refresh(job)
        _ = job.operators
        return job


__all__ += ["cancel_job", "OperatorRun"]
