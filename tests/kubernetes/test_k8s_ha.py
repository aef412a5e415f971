"""High availability on the real cluster: a modality keeps sending studies (dcmtk storescu, one
association per study, a new one every 2 s) while

  (a) `claractl apply` changes the DICOM adapter's and the API's settings — every platform pod rolls,
  (b) the DICOM receiver the modality is connected to is deleted,
  (c) the engine leader's container is killed (kill -9) while jobs run;

and then: every association succeeded or was refused with a DICOM status before any data (no
association broke), every acknowledged instance arrived at the PACS exactly once (nothing lost,
no export twice), every job ran once (admitted once, its operator Job started once — an adopted
one re-attached rather than re-run).

The platform: PostgreSQL (deployed by the project), 2 API, 2 engine and 2 DICOM receiver pods;
each study becomes a job whose operator (platform image) copies it after 2 s, exported by DICOM
to a dcmtk storescp on this machine.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter

import pytest
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.kube.client import KINDS
from tests.ports import free_port, wait_listening
from tools.ha.cluster import CALLED_AE, CALLING_AE, Pacs, kill_container, leader_pod, wait_for, write_project
from tools.ha.sender import SteadySender


def cli(project, *args: str):
    result = CliRunner().invoke(app, ["-C", str(project), *args], env={"CI": "true", "COLUMNS": "200"})
    return result.exit_code, result.output


def jobs(project) -> list[dict]:
    code, out = cli(project, "jobs", "list", "-o", "json", "--limit", "1000")
    assert code == 0, out
    return json.loads(out)


def operator_log(rest, namespace: str, job_id: str) -> str:
    """The relay operator's log, through the platform API (service proxy)."""
    secret = rest.get(KINDS["Secret"], namespace, "clara-platform-api-token")
    token = base64.b64decode(secret["data"]["token"]).decode()
    data, _s, _h = rest.api.call_api(
        f"/api/v1/namespaces/{namespace}/services/clara-platform:8765/proxy/api/v1/jobs/{job_id}/logs/relay", "GET",
        header_params={"Accept": "*/*", "X-Clara-Token": token}, auth_settings=["BearerToken"],
        _preload_content=False, _request_timeout=30)
    return data.data.decode()


def receivers(rest, namespace: str) -> dict[str, int]:
    """DICOM receiver pod → associations it accepted (its /api/v1/dicom/status, through the pod proxy)."""
    pods = rest.list(KINDS["Pod"], namespace, "app.kubernetes.io/component=dicom")
    out = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            continue
        try:
            status = rest.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}:8765/proxy/api/v1/dicom/status",
                               "dicom status")
            out[name] = status["associations_accepted"]
        except Exception:       # noqa: BLE001 — not serving yet
            continue
    return out


def available(rest, namespace: str, deployment: str, replicas: int = 2) -> bool:
    live = rest.get(KINDS["Deployment"], namespace, deployment)
    status = live.get("status") or {}
    return status.get("availableReplicas") == replicas and status.get("updatedReplicas") == replicas \
        and status.get("replicas") == replicas


@pytest.fixture
def pacs(tmp_path):
    port = free_port()
    pacs = Pacs(tmp_path / "pacs", port)
    wait_listening(port)
    yield pacs
    pacs.close()


def test_nothing_is_lost_or_done_twice_through_a_rolling_apply_a_deleted_receiver_and_a_killed_leader(
        cluster, namespace, pacs, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    rest = cluster.rest()
    project = write_project(tmp_path / "project", namespace, pacs.port, high_availability=True, pause=2)
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 0, out
    service = rest.get(KINDS["Service"], namespace, "clara-dicom-adapter")["spec"]
    sender = SteadySender(service["clusterIP"], service["ports"][0]["port"], CALLED_AE, CALLING_AE,
                          tmp_path / "studies", interval=2.0)
    sender.start()
    try:
        wait_for(lambda: sender.counts()["succeeded"] >= 3, 60, "the first studies")

        # (a) new adapter and API settings: plan names the pods that roll, apply rolls them all.
        write_project(tmp_path / "project", namespace, pacs.port, high_availability=True, pause=2, max_associations=30)
        code, out = cli(project, "plan")
        for deployment in ("clara-platform", "clara-platform-engine", "clara-platform-dicom"):
            assert f"Deployment/{deployment} (rolls 2 pods one at a time, each new pod ready before an old one stops" \
                   in out, out
        code, out = cli(project, "apply", "--auto-approve")
        assert code == 0, out
        for deployment in ("clara-platform", "clara-platform-engine", "clara-platform-dicom"):
            wait_for(lambda: available(rest, namespace, deployment), 120, f"{deployment} rolled")

        # (b) the receiver the modality talks to (sessionAffinity: ClientIP) is deleted.
        busy = wait_for(lambda: max(receivers(rest, namespace).items(), key=lambda kv: kv[1], default=None),
                        30, "a receiver that accepted associations")[0]
        rest.call("DELETE", f"{KINDS['Pod'].collection(namespace)}/{busy}", f"delete Pod/{busy}")
        wait_for(lambda: busy not in receivers(rest, namespace) and available(rest, namespace, "clara-platform-dicom"),
                 120, "a replacement receiver")

        # (c) kill -9 of the engine leader while a job runs.
        wait_for(lambda: any(j["state"] == "RUNNING" for j in jobs(project)), 60, "a running job", every=0.5)
        # Read now: just after the rolling apply the Lease can be between holders for a moment.
        leader = wait_for(lambda: leader_pod(rest, namespace), 30, "the engine leader", every=0.2)
        kill_container(rest, namespace, leader)
        killed_at = time.time()
        wait_for(lambda: any(j["started_at"] and _ts(j["started_at"]) > killed_at for j in jobs(project)), 120,
                 "a job admitted by the new leader")
        time.sleep(6)                            # a few more studies after the failover
    finally:
        sender.stop(settle=120)

    # Every association succeeded or was refused with A-ASSOCIATE-RJ before any data.
    counts = sender.counts()
    problems = [a for a in sender.attempts if a.outcome == "failed"
                or (a.outcome == "refused" and not a.detail.startswith("rejected"))]
    assert problems == [], problems
    assert counts["succeeded"] >= 10, counts
    acknowledged = sender.acknowledged()
    assert all(s.done for s in sender.studies), "a refused study was never taken"

    # Every job once; every acknowledged instance at the PACS exactly once.
    done = wait_for(lambda: (lambda js: js if js and all(j["state"] == "STOPPED" for j in js) else None)(jobs(project)),
                    240, "every job to finish", every=3)
    assert Counter((j["status"], j["attempts"]) for j in done) == {("HEALTHY", 1): len(done)}
    assert len(done) == len(sender.studies)                      # one study, one group, one job
    received = wait_for(lambda: (lambda r: r if set(r) >= acknowledged else None)(pacs.received()), 180,
                        "every acknowledged instance at the PACS", every=3)
    assert set(received) == acknowledged
    assert [uid for uid, n in received.items() if n > 1] == []

    # Each operator Job was started once; those running at the kill were re-attached, not re-run.
    logs = {j["id"]: operator_log(rest, namespace, j["id"]) for j in done}
    assert {job_id: log.count("starts as Job") for job_id, log in logs.items()} == {j: 1 for j in logs}
    adopted = [job_id for job_id, log in logs.items() if "adopted by a new engine leader" in log]
    assert adopted, "no job was running when the leader was killed"


def _ts(text: str) -> float:
    from datetime import datetime, timezone
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
