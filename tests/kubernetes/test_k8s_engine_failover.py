"""Two leader-elected engines on one store, on the real cluster (Lease election, busybox operator
Jobs on a hostPath payload volume): one schedules at a time; when the leader stops or dies
mid-job, the other takes over and re-attaches to the operator Job that is still running — the Job
is not re-created and the job finishes once."""

from __future__ import annotations

import copy
import functools
import threading
import time

import pytest
from cluster import BUSYBOX
from conftest import kubernetes_platform

from claractl.kube.client import KINDS
from claractl.kube.elector import LeaderElector
from claractl.kube.errors import KubeError
from claractl.platform.engine import Engine
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.engine.kubernetes_executor import KubernetesExecutor
from claractl.platform.leader import LeaderElected
from claractl.platform.store.models import Job, OperatorRun
from tests.ports import served
from tools.ha.cluster import wait_for

wait = functools.partial(wait_for, every=0.05)    # the leases here last seconds: look often

LEASE_SECONDS = 3.0
PIPELINE = f"""api-version: 0.6.0
name: two
operators:
- name: first
  container: {{image: "{BUSYBOX}", command: [sh, -c, "sleep 8; tr a-z A-Z < /input/a.txt > /output/upper.txt; echo first done"]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  requests: {{cpu: 0.05, memory: 32}}
- name: second
  container: {{image: "{BUSYBOX}", command: [sh, -c, "cp /in/upper.txt /out/"]}}
  input: [{{from: first, path: /in}}]
  output: [{{path: /out}}]
  requests: {{cpu: 0.05, memory: 32}}
"""


class Replica:
    """One engine pod's worth: LeaderElected around an Engine (adopt=True) with its own executor."""

    def __init__(self, name, config, store, rest, namespace, settings):
        self.config = copy.deepcopy(config)
        self.config.cluster.replica = name
        self.lost = threading.Event()

        def components():
            executor = KubernetesExecutor(settings, rest)
            original = executor.start

            def start(spec):                   # poll faster than in production
                job = original(spec)
                job.poll_interval = 0.2
                return job
            executor.start = start
            return {"engine": Engine(self.config, store, hook=InferenceHook(self.config), executor=executor,
                                     poll_interval=0.05, adopt=True)}

        self.leader = LeaderElected(self.config, components, on_lost=self._lost)
        self.leader._elector = LeaderElector(rest, namespace, "clara-engine", self.leader.identity,
                                             lease_seconds=LEASE_SECONDS, retry_seconds=0.2)

    def _lost(self):          # what os._exit does to a pod, minus the exit: stop scheduling, write nothing
        engine = self.leader.components.pop("engine", None)
        if engine is not None:
            engine.stop(timeout=5)
        self.lost.set()

    @property
    def leading(self) -> bool:
        return self.leader.status()["leader"] and "engine" in self.leader.components


@pytest.fixture
def engines(rest, namespace, payload_volume):
    """(api client, replica a, replica b, store): a leads, b stands by."""
    from claractl.platform.api import ApiContext, create_app
    from claractl.platform.client import PlatformClient

    config, store, executor = kubernetes_platform(payload_volume, rest, namespace)
    config.cluster.shared_state = config.cluster.leader_election = True
    a = Replica("engine-a", config, store, rest, namespace, executor.settings)
    b = Replica("engine-b", config, store, rest, namespace, executor.settings)
    with served(create_app(ApiContext(config, store, InferenceHook(config)))) as url:
        a.leader.start()
        wait(lambda: a.leading, 20, "engine-a to lead")
        b.leader.start()
        yield PlatformClient(url), a, b, store
        for replica in (a, b):
            replica.leader.stop(timeout=20)
    store.dispose()


def start_job(client):
    client.put_pipeline("two", PIPELINE)
    payload = client.create_payload()
    client.upload_payload_file(payload["id"], "input/a.txt", b"hello\n")
    job = client.create_job("two", payload_id=payload["id"])
    client.start_job(job["id"])
    return job["id"]


def first_job_running(rest, namespace, store, job_id):
    """The `first` operator's Job, once the store has it RUNNING."""
    with store.session() as s:
        run = s.query(OperatorRun).filter_by(job_id=job_id, name="first").one()
        if run.state != "RUNNING":
            return None
    jobs = rest.list(KINDS["Job"], namespace, "claractl.dev/operator=first")
    return jobs[0] if jobs else None


def finished(client, store, job_id, tmp_path):
    done = client.wait_for_job(job_id, timeout=120)
    assert (done["state"], done["status"]) == ("STOPPED", "HEALTHY"), done["message"]
    with store.session() as s:
        assert s.get(Job, job_id).attempts == 1                  # admitted once, never re-queued
    out = client.download_payload_file(done["payload_id"], "operators/second/upper.txt", tmp_path / "upper.txt")
    assert out.read_bytes() == b"HELLO\n"
    return client.get_job_logs(job_id, "first")


def test_only_the_leader_schedules_and_a_clean_handover_adopts_the_running_operator(engines, rest, namespace, tmp_path):
    client, a, b, store = engines
    job_id = start_job(client)
    first = wait(lambda: first_job_running(rest, namespace, store, job_id), 30, "the first operator's Job")
    assert not b.leading                                             # a standby, while a renews

    a.leader.stop(timeout=20)                                        # a rolling apply replaces a's pod
    assert not a.lost.is_set()
    wait(lambda: b.leading, 10, "engine-b to take over")             # a released the Lease: no expiry wait
    log = finished(client, store, job_id, tmp_path)
    again = rest.list(KINDS["Job"], namespace, "claractl.dev/operator=first")
    assert [j["metadata"]["uid"] for j in again] == [first["metadata"]["uid"]]   # not re-created
    assert log.count("adopted by a new engine leader") == 1
    assert log.count("first done") == 1


def test_a_leader_that_dies_mid_job_is_replaced_after_its_lease_expires(engines, rest, namespace, tmp_path):
    client, a, b, store = engines
    job_id = start_job(client)
    first = wait(lambda: first_job_running(rest, namespace, store, job_id), 30, "the first operator's Job")

    def cut_off():                     # a's API server connection breaks: no more renewals
        raise KubeError("cannot reach the Kubernetes API server (test)")
    a.leader.elector.renew = cut_off
    wait(lambda: a.lost.is_set(), 10, "engine-a to step down")
    wait(lambda: b.leading, 3 * LEASE_SECONDS + 5, "engine-b to take over after the lease expired")
    log = finished(client, store, job_id, tmp_path)
    again = rest.list(KINDS["Job"], namespace, "claractl.dev/operator=first")
    assert [j["metadata"]["uid"] for j in again] == [first["metadata"]["uid"]]
    assert log.count("first done") == 1
    status = b.leader.status()
    assert status["components"]["engine"]["recovered"]["adopted"] == 1


def test_the_lease_never_has_two_leaders_and_a_leader_whose_lease_was_taken_steps_down(rest, namespace):
    stop = threading.Event()
    leading: dict[str, bool] = {}
    lost: list[str] = []
    electors = [LeaderElector(rest, namespace, "clara-engine", name, lease_seconds=2.0, retry_seconds=0.1)
                for name in ("one", "two")]

    def campaign(elector):
        def stopped():
            leading[elector.identity] = False
            if not stop.is_set():
                lost.append(elector.identity)
        elector.run(lambda: leading.__setitem__(elector.identity, True), stopped, stop)

    threads = [threading.Thread(target=campaign, args=(e,), daemon=True) for e in electors]
    for t in threads:
        t.start()
    try:
        holder = wait(lambda: next((n for n, on in leading.items() if on), None), 10, "a leader")
        deadline = time.monotonic() + 3 * 2.0                      # several lease lengths of renewals
        while time.monotonic() < deadline:
            assert sum(leading.values()) == 1 and leading[holder]
            time.sleep(0.05)
        # Someone else writes the Lease (as a candidate that saw it expire would): the leader notices.
        # The leader renews every 0.1 s, so the intruder's write may lose the race (409): read again, as
        # any client doing an optimistic update would.
        def take_the_lease():
            live = rest.get(KINDS["Lease"], namespace, "clara-engine")
            live["spec"]["holderIdentity"] = "intruder"
            try:
                rest.call("PUT", f"{KINDS['Lease'].collection(namespace)}/clara-engine", "take the Lease", body=live)
                return True
            except KubeError as exc:
                if "409" not in str(exc):
                    raise
                return False
        wait(take_the_lease, 5, "the intruder's write to land between renewals")
        wait(lambda: lost == [holder], 5, "the old leader to step down")
        other = next(n for n in leading if n != holder) if len(leading) == 2 else ({"one", "two"} - {holder}).pop()
        wait(lambda: leading.get(other), 10, "the standby to take the Lease once the intruder does not renew")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)


def test_a_restarted_leader_container_takes_its_lease_back_at_once_and_no_one_else_does(rest, namespace):
    crashed = LeaderElector(rest, namespace, "clara-engine", "engine-pod-1/before", lease_seconds=60)
    assert crashed.try_acquire()                              # then kill -9: no renewal, no release
    other_pod = LeaderElector(rest, namespace, "clara-engine", "engine-pod-2/standby", lease_seconds=60)
    assert not other_pod.try_acquire()                        # waits for the 60 s expiry
    restarted = LeaderElector(rest, namespace, "clara-engine", "engine-pod-1/after", lease_seconds=60)
    assert restarted.try_acquire()                            # the same pod's container, restarted
    lease = rest.get(KINDS["Lease"], namespace, "clara-engine")["spec"]
    assert lease["holderIdentity"] == "engine-pod-1/after" and lease["leaseTransitions"] == 1


def test_a_leader_whose_engine_cannot_start_does_not_keep_the_lease(rest, namespace, tmp_path):
    from claractl.platform.config import PlatformConfig

    class Broken:
        def start(self):
            raise RuntimeError("the database is gone")

    lost = threading.Event()
    leader = LeaderElected(PlatformConfig(state_dir=str(tmp_path)), lambda: {"engine": Broken()}, on_lost=lost.set)
    leader._elector = LeaderElector(rest, namespace, "clara-engine", leader.identity, lease_seconds=3, retry_seconds=0.2)
    leader.start()
    try:
        wait(lambda: lost.is_set(), 20, "the leader to give up (the process exits; Kubernetes restarts it)")
        assert "engine" not in leader.components
    finally:
        leader.stop(timeout=10)
