"""A platform that crashed while operators ran as Jobs: at the next start, after recovery, its
leftover Jobs are deleted (background propagation) before the re-run creates Jobs of the same
names; Jobs that are not this platform's are left alone. On the real cluster: the leftovers are
created suspended (no pods), except one that ran to completion before the "crash"."""

from __future__ import annotations

import logging
import time
import uuid

import kubernetes.client as k8s
import pytest
from cluster import BUSYBOX
from conftest import kubernetes_platform
from test_k8s_target import kubeconfig_with_token

from claractl.kube.client import Rest, load_api_client

from claractl.platform.engine import Engine
from claractl.platform.engine.executor import OperatorSpec
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.engine.kubernetes_jobs import job_name
from claractl.platform.engine.kubernetes_leftovers import remove_leftover_jobs
from claractl.platform.engine.layout import operator_io
from claractl.platform.store.jobs import create_job
from claractl.platform.store.models import Job, JobState, JobStatus, Pipeline
from claractl.platform.store.payloads import new_payload

PDL = {
    "api-version": "0.6.0", "name": "two",
    "operators": [
        {"name": "first", "container": {"image": "claractl/x", "command": ["python", "-c", "print(1)"]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}]},
        {"name": "second", "container": {"image": "example/seg", "tag": "2"},
         "input": [{"from": "first", "path": "/in"}], "output": [{"path": "/out"}]},
    ],
}


@pytest.fixture
def elsewhere(cluster):
    name = cluster.create_namespace("ct-elsewhere")
    yield name
    cluster.delete_namespace(name)


def suspended(manifest: dict) -> dict:
    manifest["spec"]["suspend"] = True          # a leftover that never needs a pod here
    return manifest


@pytest.fixture
def crashed(rest, api_client, namespace, elsewhere, tmp_path):
    """The store and cluster as a kill -9 leaves them, plus Jobs that are not this platform's."""
    config, store, executor = kubernetes_platform(tmp_path, rest, namespace)
    batch = k8s.BatchV1Api(api_client)

    def job_row(s, pipeline, name, attempts, states):
        job = create_job(s, pipeline, new_payload(s, config.payloads_dir), name=name, start=True)
        job.state, job.attempts, job.started_at = JobState.RUNNING, attempts, job.queued_at
        for run, state in zip(job.operators, states):
            run.state = state
        return job

    with store.session() as s:
        pipeline = Pipeline(name="two", name_key="two", definition_text="", definition=PDL)
        s.add(pipeline)
        s.flush()
        # first finished before the crash; second was running.
        requeued = job_row(s, pipeline, "requeued", 1, [JobState.STOPPED, JobState.RUNNING])
        # second's Job was created, the crash came before its RUNNING row was committed.
        created = job_row(s, pipeline, "created-not-recorded", 1, [JobState.STOPPED, JobState.PENDING])
        # running during its third crash: recovery evicts it.
        evicted = job_row(s, pipeline, "evicted", 3, [JobState.RUNNING, JobState.PENDING])
        ids = {"requeued": requeued.id, "created": created.id, "evicted": evicted.id}
        payloads = {k: config.payloads_dir / j.payload_id for k, j in
                    (("requeued", requeued), ("created", created), ("evicted", evicted))}

    def operator_job(key: str, index: int) -> dict:
        op = PDL["operators"][index]
        spec = OperatorSpec(job_id=ids[key], job_name=key, pipeline_name="two", operator=op, payload=payloads[key],
                            io=operator_io(payloads[key], PDL, op), log_path=tmp_path / f"{key}-{index}.log")
        return executor.manifest(spec)       # labelled exactly as the crashed platform labelled it

    ours = [operator_job("requeued", 0), operator_job("requeued", 1), operator_job("created", 1),
            operator_job("evicted", 0)]
    # first of "requeued" finished before the crash: it really runs (busybox), the others stay suspended.
    container = ours[0]["spec"]["template"]["spec"]["containers"][0]
    container.update(image=BUSYBOX, command=["true"])
    container.pop("volumeMounts")
    ours[0]["spec"]["template"]["spec"].pop("volumes")
    for manifest in ours:
        batch.create_namespaced_job(namespace, manifest if manifest is ours[0] else suspended(manifest))
    deadline = time.monotonic() + 60
    while not (batch.read_namespaced_job(ours[0]["metadata"]["name"], namespace).status.succeeded or 0):
        assert time.monotonic() < deadline, "the finished leftover did not complete"
        time.sleep(0.3)

    other_id = str(uuid.uuid4())             # another platform in the same namespace
    another = operator_job("requeued", 1)
    another["metadata"]["name"] = job_name(other_id, "second")
    another["metadata"]["labels"]["claractl.dev/job-id"] = other_id
    same_labels_other_name = operator_job("requeued", 1)
    same_labels_other_name["metadata"]["name"] = "my-debug-copy"
    hand_made = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "nightly-backup"},
                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                "containers": [{"name": "b", "image": BUSYBOX}]}}}}
    other_namespace = operator_job("requeued", 1)
    other_namespace["metadata"]["namespace"] = elsewhere
    for manifest in (another, same_labels_other_name, hand_made):
        batch.create_namespaced_job(namespace, suspended(manifest))
    batch.create_namespaced_job(elsewhere, suspended(other_namespace))

    engine = Engine(config, store, hook=InferenceHook(config), executor=executor, poll_interval=0.05)
    yield {"engine": engine, "store": store, "batch": batch, "ids": ids, "ours": [m["metadata"]["name"] for m in ours],
           "kept": sorted([another["metadata"]["name"], "my-debug-copy", "nightly-backup"]),
           "namespace": namespace, "elsewhere": elsewhere}
    engine.stop(timeout=5)
    store.dispose()


def names(batch: k8s.BatchV1Api, namespace: str) -> list[str]:
    return sorted(j.metadata.name for j in batch.list_namespaced_job(namespace).items
                  if not j.metadata.deletion_timestamp)


def test_start_deletes_the_crashed_platforms_jobs_and_nothing_else(crashed, caplog):
    batch, ours, ns = crashed["batch"], crashed["ours"], crashed["namespace"]
    assert set(ours) <= set(names(batch, ns))
    with caplog.at_level(logging.WARNING, logger="claractl.engine"):
        deleted = remove_leftover_jobs_after_recovery(crashed)
    assert sorted(deleted) == sorted(ours)
    assert names(batch, ns) == crashed["kept"]
    assert names(batch, crashed["elsewhere"]) == [ours[1]]      # same name and labels, other namespace
    for name in ours:
        assert any(f"deleted leftover Job {ns}/{name}" in r.getMessage() for r in caplog.records)


def remove_leftover_jobs_after_recovery(crashed) -> list[str]:
    """Recovery then the executor's clean-up, as Engine.start does (without the scheduler)."""
    from claractl.platform.engine.recovery import recover
    engine = crashed["engine"]
    counts = recover(engine.store, engine.config)
    assert (counts["requeued"], counts["evicted"]) == (2, 1)
    return engine.executor.after_recovery(engine.store)


def test_the_rerun_creates_its_jobs_under_the_same_names_after_the_leftovers_are_gone(crashed):
    engine, batch, ids, ns = crashed["engine"], crashed["batch"], crashed["ids"], crashed["namespace"]
    old_first = batch.read_namespaced_job(job_name(ids["requeued"], "first"), ns)
    assert any(c.type == "Complete" for c in old_first.status.conditions)
    engine.start()
    assert engine.recovered["leftover_jobs_deleted"] == 4
    deadline = time.monotonic() + 10
    rerun = None
    while time.monotonic() < deadline:
        rerun = next((j for j in batch.list_namespaced_job(ns).items
                      if j.metadata.name == old_first.metadata.name), None)
        if rerun is not None:
            break
        time.sleep(0.05)
    assert rerun is not None, "the re-queued job's first operator runs again as a Job"
    assert rerun.metadata.uid != old_first.metadata.uid
    assert not any(c.type == "Complete" for c in (rerun.status and rerun.status.conditions) or [])
    with engine.store.session() as s:
        assert s.get(Job, ids["evicted"]).status == JobStatus.EVICTED
        assert s.get(Job, ids["requeued"]).attempts == 2
    assert job_name(ids["evicted"], "first") not in names(batch, ns)
    assert set(crashed["kept"]) <= set(names(batch, ns))


def test_a_job_whose_operator_is_running_is_not_touched(crashed, rest):
    """Without recovery (rows still RUNNING): the running operators' Jobs stay, the rest go."""
    batch, ids, ns = crashed["batch"], crashed["ids"], crashed["namespace"]
    deleted = remove_leftover_jobs(rest, ns, crashed["store"])
    running = {job_name(ids["requeued"], "second"), job_name(ids["evicted"], "first")}
    assert sorted(deleted) == sorted(set(crashed["ours"]) - running)
    assert names(batch, ns) == sorted(running | set(crashed["kept"]))


def test_a_cluster_error_is_logged_and_the_start_goes_on(crashed, cluster, tmp_path, caplog):
    """The platform's credentials may not list Jobs (a ServiceAccount with no Role): it starts anyway."""
    ns = crashed["namespace"]
    core = k8s.CoreV1Api(crashed["batch"].api_client)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "no-rights"}})
    token = core.create_namespaced_service_account_token("no-rights", ns, {"spec": {"expirationSeconds": 600}}).status.token
    executor = crashed["engine"].executor
    executor._rest = Rest(load_api_client(kubeconfig=str(kubeconfig_with_token(cluster, tmp_path, token))))
    with caplog.at_level(logging.WARNING, logger="claractl.engine"):
        assert executor.after_recovery(crashed["store"]) == []
    assert any("could not list leftover operator Jobs" in r.getMessage() and "forbidden by RBAC" in r.getMessage()
               for r in caplog.records)
    assert set(crashed["ours"]) <= set(names(crashed["batch"], ns))
