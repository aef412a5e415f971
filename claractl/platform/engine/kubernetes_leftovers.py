"""At platform start, delete the operator Jobs a crashed platform left behind.

Recovery (recovery.py) re-queues or evicts every job a crash left RUNNING, except, with a
leader-elected engine, the jobs it adopts (their operator Jobs keep running; see
KubernetesExecutor.adoptable). Their operator Jobs would otherwise keep running (using the cluster and
writing into the payload the re-run uses) and, since a Job's name is derived from job id and
operator, make the re-run's create fail with AlreadyExists. So after recovery every Job of ours
whose operator is not RUNNING in the store is deleted (background propagation: its pods go too),
and we wait until the names are free before the engine admits anything.

"Ours" is strict: the executor's labels, in the executor's namespace, a `claractl.dev/job-id`
that is a job in this platform's store, and the exact name the executor gives that job's
operator. Hand-made Jobs and another platform's Jobs (other job ids) are never touched.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from claractl.platform.engine.kubernetes_jobs import (
    JOB,
    JOB_ID_LABEL,
    OPERATOR_LABELS,
    job_name,
    label_value,
)
from claractl.platform.store import Store
from claractl.platform.store.models import Job, JobState
from claractl.kube.client import Rest
from claractl.kube.errors import KubeError

log = logging.getLogger("claractl.engine")
DELETE_OPTIONS = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


def leftover_jobs(rest: Rest, namespace: str, store: Store,
                  adopted: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """(Job name, job id, operator) of this platform's Jobs whose operator is not RUNNING, other
    than the Jobs of `adopted` jobs (a leader-elected engine re-attaches to those)."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(OPERATOR_LABELS.items()))
    items = rest.list(JOB, namespace, selector)
    ids = {item["metadata"].get("labels", {}).get(JOB_ID_LABEL) for item in items} - {None}
    if not ids:
        return []
    found: list[tuple[str, str, str]] = []
    with store.session() as s:
        # Label values are the job ids (UUIDs pass label_value unchanged); compare both ways.
        jobs = {label_value(j.id): j for j in s.scalars(select(Job).where(Job.id.in_(ids)))}
        for item in items:
            name = item["metadata"]["name"]
            job = jobs.get(item["metadata"].get("labels", {}).get(JOB_ID_LABEL))
            if job is None or job.id in adopted:
                continue                          # another platform's job id, hand-made, or adopted
            run = next((r for r in job.operators if job_name(job.id, r.name) == name), None)
            if run is None or run.state == JobState.RUNNING:
                continue                          # not a name we would give / still ours to run
            found.append((name, job.id, run.name))
    return found


def remove_leftover_jobs(rest: Rest, namespace: str, store: Store, wait: float = 30.0,
                         poll: float = 0.2, adopted: frozenset[str] = frozenset()) -> list[str]:
    """Delete the leftovers and wait (≤ `wait` s) until they are gone. Returns the names deleted.
    A cluster error is logged, not raised: the platform still starts (a re-run whose name is
    still taken then fails with the API server's AlreadyExists message)."""
    try:
        leftovers = leftover_jobs(rest, namespace, store, adopted)
    except KubeError as exc:
        log.warning("recovery: could not list leftover operator Jobs in namespace %s: %s", namespace, exc)
        return []
    deleted: list[str] = []
    for name, job_id, operator in leftovers:
        try:
            rest.call("DELETE", f"{JOB.collection(namespace)}/{name}", f"delete Job/{name}", body=DELETE_OPTIONS)
        except KubeError as exc:
            if "not found" not in str(exc).lower():
                log.warning("recovery: could not delete leftover Job %s/%s: %s", namespace, name, exc)
                continue
        log.warning("recovery: deleted leftover Job %s/%s (job %s, operator %s, left by a crashed platform)",
                    namespace, name, job_id, operator)
        deleted.append(name)
    _wait_gone(rest, namespace, deleted, wait, poll)
    return deleted


def _wait_gone(rest: Rest, namespace: str, names: list[str], wait: float, poll: float) -> None:
    """Background deletion frees the name at once unless a finalizer holds the Job: wait for it."""
    pending = list(names)
    deadline = time.monotonic() + wait
    while pending:
        try:
            pending = [n for n in pending if rest.get(JOB, namespace, n) is not None]
        except KubeError:
            pass
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    if pending:
        log.warning("recovery: leftover Job(s) %s still present after %.0f s; their re-runs may fail",
                    ", ".join(pending), wait)


__all__ = ["leftover_jobs", "remove_leftover_jobs"]
