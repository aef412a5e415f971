"""Run one admitted job: its operator DAG, to a final state and status.

Operators whose inputs are ready start (independent ones in parallel); a non-zero exit faults
the job naming the operator; cancel, timeout and platform shutdown kill every running
operator's process tree. The final job record and its export tasks commit together.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from claractl.platform.audit import trail
from claractl.platform.config import PlatformConfig
from claractl.platform.engine import layout
from claractl.platform.engine.executor import Executor, ExecutorError, OperatorSpec, RunningOperator
from claractl.platform.engine.inference_hook import InferenceHook, ModelLoadError
from claractl.platform.engine.placeholders import PlaceholderError, resolve
from claractl.platform.engine.services import ServiceError, ServiceManager
from claractl.platform.store import Store
from claractl.platform.store import changes
from claractl.platform.store.exports import create_export_task
from claractl.platform.store.retry import retry_transient
from claractl.platform.store.models import Job, JobState, JobStatus, OperatorRun, Pipeline, utcnow

log = logging.getLogger("claractl.engine")
POLL = 0.5     # at most this long between deadline checks; exits and cancels wake the loop at once
CANCELED_BY_REQUEST = "canceled by request"


class Stop:
    """Why a job's operators were killed (or, DETACH, left running for the next engine leader)."""
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"
    DETACH = "detach"


class JobRunner:
    def __init__(self, job_id: str, store: Store, config: PlatformConfig, executor: Executor,
                 hook: InferenceHook, platform_env: dict[str, str], on_done: Callable[[str], None],
                 services: ServiceManager | None = None, adopt: set[str] | None = None) -> None:
        self.job_id = job_id
        # An adopted job (leader failover): these operators' Jobs exist; re-attach, don't start them.
        self.adopt = adopt
        self.store = store
        self.config = config
        self.executor = executor
        self.hook = hook
        self.platform_env = platform_env
        self.on_done = on_done
        self.services = services
        self.stop_reason: str | None = None
        self._stop = threading.Event()
        self._leaving = threading.Event()        # shutdown or detach: store writes stop retrying
        self._changed = threading.Event()     # an operator exited, or a stop was requested
        self.thread = threading.Thread(target=self._run_safely, name=f"job-{job_id[:8]}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if reason != Stop.CANCEL:
            self._leaving.set()
        self._stop.set()
        self._changed.set()

    # -- helpers -------------------------------------------------------------------------------
    def _write(self, write: Callable[[], Any]) -> Any:
        """A store write of this job, tried again while the store is away (PostgreSQL restarting,
        the disk full): a job must not be left RUNNING, or FAULTED, by a passing outage. Given up
        when the engine stops — the next start recovers the job from the store."""
        return retry_transient(write, stopping=self._leaving, what=f"job {self.job_id}")

    def _update_op(self, name: str, **fields: Any) -> None:
        def write() -> None:
            with self.store.session() as s:
                run = s.query(OperatorRun).filter_by(job_id=self.job_id, name=name).one()
                for k, v in fields.items():
                    setattr(run, k, v)
        self._write(write)

    def _finish(self, status: str, message: str | None, op_updates: dict[str, dict[str, Any]],
                definition: dict[str, Any] | None = None, payload: Path | None = None) -> None:
        self._write(lambda: self._record_finish(status, message, op_updates, definition, payload))

    def _record_finish(self, status: str, message: str | None, op_updates: dict[str, dict[str, Any]],
                       definition: dict[str, Any] | None, payload: Path | None) -> None:
        with self.store.session() as s:
            job = s.get(Job, self.job_id)
            for run in job.operators:
                if run.name in op_updates:
                    for k, v in op_updates[run.name].items():
                        setattr(run, k, v)
            job.state = JobState.STOPPED
            job.status = status
            job.message = message
            job.stopped_at = utcnow()
            trail.record_job(s, job, "stopped", status=status)
            changes.mark(s, "exports")      # its export tasks may be sent now
            if status == JobStatus.HEALTHY and definition is not None and payload is not None:
                self._create_exports(s, job, definition, payload)

    def _cancel_message(self) -> str:
        """"canceled by request", with the reason the canceller gave (stored on the job with the request)."""
        with self.store.session() as s:
            message = s.get(Job, self.job_id).message or ""
        return message if message.startswith(CANCELED_BY_REQUEST) else CANCELED_BY_REQUEST

    def _requeue(self) -> None:
        """Platform shutdown: the job goes back to the queue, not counted as an attempt."""
        self._write(self._record_requeue)

    def _record_requeue(self) -> None:
        with self.store.session() as s:
            job = s.get(Job, self.job_id)
            job.state = JobState.PENDING
            job.attempts = max(job.attempts - 1, 0)
            job.started_at = None
            job.message = "re-queued: the platform stopped while the job ran"
            for run in job.operators:
                run.state, run.status, run.exit_code, run.pid = JobState.PENDING, JobStatus.HEALTHY, None, None
                run.started_at = run.stopped_at = None
                run.message = None

    def _create_exports(self, s, job: Job, definition: dict[str, Any], payload: Path) -> None:
        pipeline = s.get(Pipeline, job.pipeline_id)
        for entry in (pipeline.export if pipeline is not None else None) or []:
            agent = entry.get("agent")
            if not agent:
                continue
            if entry.get("from"):
                op = next((o for o in definition.get("operators") or []
                           if o["name"].lower() == str(entry["from"]).lower()), None)
                outs = [layout.output_dir(payload, op, o) for o in (op or {}).get("output") or []] if op else []
                if op and entry.get("name"):
                    outs = [layout.output_dir(payload, op, o) for o in op.get("output") or []
                            if str(o.get("name", "")).lower() == str(entry["name"]).lower()]
            else:
                outs = layout.sink_outputs(payload, definition)
            files = sorted(p.relative_to(payload).as_posix() for d in outs if d.is_dir()
                           for p in d.rglob("*") if p.is_file())
            destinations = entry.get("destinations") or [None]
            for dest in destinations:
                create_export_task(s, job.id, agent, files, destination=dest,
                                   max_attempts=int(entry.get("max-attempts", entry.get("max_attempts", 5))))

    def _watch(self, proc: RunningOperator) -> None:
        try:
            proc.wait()
        finally:
            self._changed.set()

    # -- main ----------------------------------------------------------------------------------
    def _run_safely(self) -> None:
        try:
            self._run()
        except Exception as exc:  # never leave a job RUNNING because of a bug here
            log.exception("job %s: engine error", self.job_id)
            try:
                self._finish(JobStatus.FAULTED, f"engine error: {exc}", {})
            except Exception:
                log.exception("job %s: cannot record the failure", self.job_id)
        finally:
            if self.services is not None:
                self.services.release(self.job_id)
            self.on_done(self.job_id)

    def _snapshot(self) -> dict[str, Any]:
        with self.store.session() as s:
            job = s.get(Job, self.job_id)
            return dict(definition=job.definition, variables=job.variables or {}, name=job.name,
                        pipeline=job.pipeline_name, payload_id=job.payload_id,
                        timeout=job.timeout or self.config.engine.job_timeout,
                        started_at=job.started_at or utcnow())

    def _run(self) -> None:
        snapshot = self._write(self._snapshot)
        payload = self.config.payloads_dir / snapshot["payload_id"]
        try:
            definition = resolve(snapshot["definition"], snapshot["variables"])
        except PlaceholderError as exc:
            self._finish(JobStatus.FAULTED, f"cannot start: {exc}", {})
            return
        ops = {op["name"]: op for op in definition.get("operators") or []}
        lower = {n.lower(): n for n in ops}
        deps = {n: {lower.get(d, d) for d in layout.dependencies(op)} for n, op in ops.items()}
        started_at = snapshot["started_at"]
        if started_at.tzinfo is None:
            from datetime import timezone
            started_at = started_at.replace(tzinfo=timezone.utc)
        deadline = time.monotonic() + max(0.0, snapshot["timeout"] - (utcnow() - started_at).total_seconds())
        logs = self.config.logs_dir / "jobs" / self.job_id

        try:       # every service the operators declare runs and is ready before the first operator
            connections = self.services.acquire(self.job_id, definition, self.platform_env) if self.services else {}
        except ServiceError as exc:
            self._finish(JobStatus.FAULTED, str(exc), {})
            return

        done: set[str] = set()
        running: dict[str, RunningOperator] = {}
        updates: dict[str, dict[str, Any]] = {}
        op_deadlines: dict[str, tuple[float, float]] = {}   # PDL `timeout`: name → (monotonic deadline, limit)
        if self.adopt is not None:
            self._resume(ops, definition, payload, snapshot, logs, connections, done, running, op_deadlines)

        def stop_all(status: str, message: str) -> None:
            for name, proc in running.items():
                proc.kill()
                updates[name] = dict(state=JobState.STOPPED, status=status, stopped_at=utcnow(),
                                     exit_code=proc.poll(), message=message)
            for name in ops:
                if name not in done and name not in running and name not in updates:
                    updates[name] = dict(state=JobState.STOPPED, status=JobStatus.CANCELED,
                                         message=f"not run: {message}")
            running.clear()

        while True:
            if self._stop.is_set():
                # Nothing written: the next leader adopts the job (not one with PDL services:
                # they stop with this engine, so it is re-queued like at a shutdown).
                if self.stop_reason == Stop.DETACH and not connections:
                    for proc in running.values():
                        getattr(proc, "detach", lambda: None)()
                    return
                if self.stop_reason in (Stop.SHUTDOWN, Stop.DETACH):
                    for proc in running.values():
                        proc.kill(grace=1.0)
                    self._requeue()
                    return
                stop_all(JobStatus.CANCELED, "job canceled")
                self._finish(JobStatus.CANCELED, self._cancel_message(), updates)
                return
            if time.monotonic() > deadline:
                stop_all(JobStatus.TERMINATED, f"job timed out after {snapshot['timeout']:g} s")
                self._finish(JobStatus.TERMINATED, f"job timed out after {snapshot['timeout']:g} s", updates)
                return
            late = next((n for n in running if n in op_deadlines and time.monotonic() > op_deadlines[n][0]), None)
            if late is not None:
                limit = op_deadlines[late][1]
                proc = running.pop(late)
                proc.kill()
                updates[late] = dict(state=JobState.STOPPED, status=JobStatus.FAULTED, stopped_at=utcnow(),
                                     exit_code=proc.poll(), message=f"stopped: ran longer than its timeout of {limit:g} s")
                stop_all(JobStatus.CANCELED, f"operator {late!r} timed out")
                self._finish(JobStatus.FAULTED, f"operator {late!r} exceeded its timeout of {limit:g} s "
                                                f"(PDL `timeout`) and was stopped", updates)
                return
            # Collect finished operators.
            for name, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[name]
                if code == 0:
                    done.add(name)
                    self._update_op(name, state=JobState.STOPPED, status=JobStatus.HEALTHY,
                                    exit_code=0, stopped_at=utcnow())
                    continue
                message = f"operator {name!r} exited with code {code} (log: {logs / (name + '.log')})"
                updates[name] = dict(state=JobState.STOPPED, status=JobStatus.FAULTED, exit_code=code,
                                     stopped_at=utcnow(), message=f"exited with code {code}")
                stop_all(JobStatus.CANCELED, f"operator {name!r} failed")
                self._finish(JobStatus.FAULTED, message, updates)
                return
            if len(done) == len(ops):
                self._finish(JobStatus.HEALTHY, None, updates, definition, payload)
                return
            # Start operators whose inputs are ready.
            for name, op in ops.items():
                if name in done or name in running or not deps[name] <= done:
                    continue
                try:
                    for model in op.get("models") or []:
                        self.hook.ensure_loaded(model["name"] if isinstance(model, dict) else str(model))
                    spec = self._spec(op, definition, payload, snapshot, logs, connections)
                    proc = self.executor.start(spec)
                except (ExecutorError, ModelLoadError, ValueError) as exc:
                    updates[name] = dict(state=JobState.STOPPED, status=JobStatus.FAULTED,
                                         stopped_at=utcnow(), message=str(exc))
                    stop_all(JobStatus.CANCELED, f"operator {name!r} could not start")
                    self._finish(JobStatus.FAULTED, f"operator {name!r} could not start: {exc}", updates)
                    return
                running[name] = proc
                if op.get("timeout"):
                    op_deadlines[name] = (time.monotonic() + float(op["timeout"]), float(op["timeout"]))
                self._start_watch(name, proc)
                self._update_op(name, state=JobState.RUNNING, started_at=utcnow(), pid=proc.pid)
            next_deadline = min([deadline] + [op_deadlines[n][0] for n in running if n in op_deadlines])
            self._changed.wait(max(0.0, min(POLL, next_deadline - time.monotonic())) + 0.01)
            self._changed.clear()


    def _spec(self, op: dict[str, Any], definition: dict[str, Any], payload: Path, snapshot: dict[str, Any],
              logs: Path, connections: dict[str, Any]) -> OperatorSpec:
        return OperatorSpec(job_id=self.job_id, job_name=snapshot["name"], pipeline_name=snapshot["pipeline"],
                            operator=op, payload=payload, io=layout.operator_io(payload, definition, op),
                            log_path=logs / f"{op['name']}.log", platform_env=self.platform_env,
                            connections=connections.get(op["name"], []))

    def _start_watch(self, name: str, proc: RunningOperator) -> None:
        threading.Thread(target=self._watch, args=(proc,), name=f"op-{name}", daemon=True).start()

    def _resume(self, ops: dict[str, dict[str, Any]], definition: dict[str, Any], payload: Path,
                snapshot: dict[str, Any], logs: Path, connections: dict[str, Any], done: set[str],
                running: dict[str, RunningOperator], op_deadlines: dict[str, tuple[float, float]]) -> None:
        """An adopted job: operators that finished stay done, those with a Job are watched again
        (a PDL `timeout` counts again from here), the rest start as their inputs become ready."""
        with self.store.session() as s:
            runs = {r.name: (r.state, r.status) for r in s.query(OperatorRun).filter_by(job_id=self.job_id)}
        for name, op in ops.items():
            state, status = runs.get(name, (None, None))
            if state == JobState.STOPPED and status == JobStatus.HEALTHY:
                done.add(name)
            elif name in (self.adopt or ()):
                proc = self.executor.attach(self._spec(op, definition, payload, snapshot, logs, connections))
                running[name] = proc
                if op.get("timeout"):
                    op_deadlines[name] = (time.monotonic() + float(op["timeout"]), float(op["timeout"]))
                self._start_watch(name, proc)
                if state != JobState.RUNNING:       # created by the last leader, not yet recorded
                    self._update_op(name, state=JobState.RUNNING, started_at=utcnow(), pid=proc.pid)
        log.info("job %s adopted: %d operator(s) done, %d re-attached", self.job_id, len(done), len(running))


def reset_payload_outputs(payload: Path) -> None:
    """A re-run starts from the job input: drop what a previous attempt wrote."""
    shutil.rmtree(payload / "operators", ignore_errors=True)


def retention_delay(config: PlatformConfig) -> timedelta:
    return timedelta(seconds=config.engine.payload_retention)
