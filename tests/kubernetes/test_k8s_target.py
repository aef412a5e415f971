"""The kubernetes target against the stand-in: apply the rendered charts, re-read the inventory,
see no diff; drift, conflicts, force, prune, waiting, the Lease lock, kubeconfig, and errors."""

from __future__ import annotations

import threading

import kubernetes.client as k8s
import pytest
import yaml

from claractl.targets.kubernetes import (
    KINDS, ApplyConflict, KubeError, LeaseLock, LockHeld, Rest, WaitTimeout, apply_object, delete_object, existing_owner,
    desired_objects, field_changes, force_unlock, load_api_client, normalize_for_diff, read_inventory, wait_ready,
)
from claractl.kube.client import INVENTORY_KINDS
from conftest import NAMESPACE, Secret, blueprint_services, client_for, make_project
from tests.ports import free_port


def apply_all(rest, project, **kwargs):
    objects = desired_objects(project, reveal_secrets=True)
    for obj in objects:
        apply_object(rest, obj.manifest, **kwargs)
    return objects


def live_index(rest, project):
    return {(o["kind"], o["metadata"]["name"]): o for o in read_inventory(rest, NAMESPACE, project.name)}


def diffs(rest, project):
    live = live_index(rest, project)
    return {o.address: field_changes(o.manifest, live.get((o.kind, o.name)))
            for o in desired_objects(project, reveal_secrets=True)
            if field_changes(o.manifest, live.get((o.kind, o.name)))}


@pytest.mark.parametrize("services", [
    blueprint_services(),
    {**blueprint_services(), "platform": {"database": Secret("DB", "postgresql://u:pw@db/clara")},
     "dicom-adapter": {"service-type": "NodePort", "node-port": 30104}, "triton": {"gpus": 2}},
], ids=["blueprint", "postgres-nodeport-gpus"])
def test_apply_then_reread_shows_no_changes(rest, standin, services):
    project = make_project(services)
    objects = apply_all(rest, project)
    assert diffs(rest, project) == {}
    live = live_index(rest, project)
    assert set(live) == {(o.kind, o.name) for o in objects}
    service = live[("Service", "clara-platform")]
    assert service["spec"]["clusterIP"]            # server-populated, yet no diff
    managers = {m["manager"] for o in live.values() for m in o["metadata"]["managedFields"]}
    assert managers == {"claractl"}
    # A second apply changes nothing on the server.
    version = standin.store.resource_version
    apply_all(rest, project)
    assert standin.store.resource_version == version


def test_inventory_is_one_list_request_per_kind_whatever_the_object_count(rest, standin, project):
    apply_all(rest, project)
    before = len(standin.requests)
    objects = read_inventory(rest, NAMESPACE, project.name)
    calls = standin.requests[before:]
    assert len(calls) == len(INVENTORY_KINDS)
    assert all(method == "GET" for method, _ in calls) and len(objects) == 12
    assert all(o["apiVersion"] and o["kind"] for o in objects)


def test_inventory_never_includes_objects_of_other_projects_or_made_by_hand(rest, api_client, project):
    apply_all(rest, project)
    other = make_project(name="other-project", services={"platform": {"api-port": 9000}})
    # Same namespace, same object names: a planned create must notice the other owner first.
    other_objects = desired_objects(other)
    assert {existing_owner(rest, o.manifest) for o in other_objects} == {"radiology-ai"}
    k8s.CoreV1Api(api_client).create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "by-hand"}})
    assert existing_owner(rest, {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "by-hand", "namespace": NAMESPACE}}) == ""
    for obj in other_objects:
        obj.manifest["metadata"]["name"] = "other-" + obj.name
        apply_object(rest, obj.manifest)
    mine = read_inventory(rest, NAMESPACE, project.name)
    assert len(mine) == 12
    assert {o["metadata"]["labels"]["claractl.dev/project"] for o in mine} == {"radiology-ai"}
    assert not {o["metadata"]["name"] for o in mine} & {"by-hand", "other-clara-platform"}
    assert len(read_inventory(rest, NAMESPACE, "other-project")) == len(other_objects)


def test_a_field_changed_by_another_manager_shows_as_drift(rest, api_client, project):
    apply_all(rest, project)
    k8s.AppsV1Api(api_client).patch_namespaced_deployment(
        "clara-platform", NAMESPACE, {"spec": {"replicas": 3}}, field_manager="kubectl-scale")
    k8s.CoreV1Api(api_client).patch_namespaced_service(
        "clara-dicom-adapter", NAMESPACE, {"spec": {"type": "NodePort"}}, field_manager="kubectl-edit")
    drift = diffs(rest, project)
    assert drift == {
        "service.platform/Deployment/clara-platform": [(".spec.replicas", 3, 1)],
        "service.dicom-adapter/Service/clara-dicom-adapter": [(".spec.type", "NodePort", "ClusterIP")],
    }


def test_conflicting_apply_is_reported_with_the_other_manager_and_force_takes_over(rest, api_client, project):
    apply_all(rest, project)
    apps = k8s.AppsV1Api(api_client)
    apps.patch_namespaced_deployment("clara-triton", NAMESPACE, {"spec": {"replicas": 2}}, field_manager="kubectl-scale")
    triton = next(o for o in desired_objects(project) if o.address == "service.triton/Deployment/clara-triton")
    with pytest.raises(ApplyConflict) as info:
        apply_object(rest, triton.manifest)
    assert info.value.conflicts == [("kubectl-scale", ".spec.replicas")]
    message = str(info.value)
    assert "Deployment/clara-triton" in message and "'kubectl-scale'" in message and "--force-conflicts" in message
    assert "\n" not in message
    assert apps.read_namespaced_deployment("clara-triton", NAMESPACE).spec.replicas == 2   # not overwritten
    apply_object(rest, triton.manifest, force_conflicts=True)
    assert apps.read_namespaced_deployment("clara-triton", NAMESPACE).spec.replicas == 1
    assert diffs(rest, project) == {}


def test_changed_values_show_field_level_changes_and_dry_run_writes_nothing(rest, standin, project):
    apply_all(rest, project)
    changed = make_project({**blueprint_services(), "triton": {"gpus": 2}, "platform": {"workers": 4}})
    drift = diffs(rest, changed)
    assert drift["service.triton/Deployment/clara-triton"] == [
        (".spec.template.spec.containers[name=triton].resources.limits.nvidia.com/gpu", 1, 2)]
    assert "service.platform/ConfigMap/clara-platform" in drift
    version = standin.store.resource_version
    for obj in desired_objects(changed, reveal_secrets=True):
        apply_object(rest, obj.manifest, dry_run=True)
    assert standin.store.resource_version == version
    assert diffs(rest, changed)


def test_secret_values_never_appear_in_field_changes(rest, project):
    services = {**blueprint_services(), "platform": {"database": Secret("DB", "postgresql://u:first@db/c")}}
    apply_all(rest, make_project(services))
    services["platform"]["database"] = Secret("DB", "postgresql://u:second@db/c")
    drift = diffs(rest, make_project(services))
    secret_changes = drift["service.platform/Secret/clara-platform-database"]
    assert secret_changes == [(".data.url", "(sensitive)", "(sensitive)")]


def test_prune_deletes_objects_no_longer_rendered_and_nothing_else(rest, api_client, project):
    apply_all(rest, project)
    k8s.CoreV1Api(api_client).create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "by-hand"}})
    smaller = make_project({**blueprint_services(), "triton": {"enabled": False}})
    wanted = {(o.kind, o.name) for o in desired_objects(smaller)}
    stale = [o for o in read_inventory(rest, NAMESPACE, smaller.name) if (o["kind"], o["metadata"]["name"]) not in wanted]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in stale) == [
        ("Deployment", "clara-triton"), ("PersistentVolumeClaim", "clara-triton-models"), ("Service", "clara-triton")]
    for obj in stale:
        assert delete_object(rest, obj) is True
    assert delete_object(rest, stale[0]) is False             # already gone
    assert ("ConfigMap", "by-hand") in {(o.metadata.name and "ConfigMap", o.metadata.name)
                                        for o in k8s.CoreV1Api(api_client).list_namespaced_config_map(NAMESPACE).items}
    assert set(live_index(rest, smaller)) == wanted


def test_normalize_drops_server_fields_and_defaults():
    live = {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "uid": "u", "resourceVersion": "5", "generation": 2,
                         "creationTimestamp": "t", "managedFields": [{}], "labels": {"a": "b"}},
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "sessionAffinity": "None",
                     "ports": [{"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}}
    rendered = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n", "labels": {"a": "b"}},
                "spec": {"ports": [{"name": "http", "port": 80}]}}
    assert normalize_for_diff(live, like=rendered) == rendered
    plain = normalize_for_diff(live)
    assert "status" not in plain and "clusterIP" not in plain["spec"] and "uid" not in plain["metadata"]
    assert plain["spec"]["sessionAffinity"] == "None"         # without `like`, only server-owned fields go


def test_wait_ready_waits_for_available_and_explains_a_timeout(rest, standin, project):
    objects = apply_all(rest, project)
    deployment = next(o.manifest for o in objects if o.kind == "Deployment" and o.name == "clara-platform")
    with pytest.raises(WaitTimeout) as info:
        wait_ready(rest, deployment, timeout=0.3, poll=0.05)
    assert str(info.value).startswith("Deployment/clara-platform not ready after 0.3s: ")
    standin.set_deployment_available(NAMESPACE, "clara-platform", available=False,
                                     message="0/1 replicas: ImagePullBackOff")
    with pytest.raises(WaitTimeout, match="ImagePullBackOff"):
        wait_ready(rest, deployment, timeout=0.2, poll=0.05)
    timer = threading.Timer(0.2, standin.set_deployment_available, (NAMESPACE, "clara-platform"))
    timer.start()
    live = wait_ready(rest, deployment, timeout=5, poll=0.05)
    assert live["status"]["availableReplicas"] == 1
    pvc = next(o.manifest for o in objects if o.kind == "PersistentVolumeClaim")
    assert wait_ready(rest, pvc, timeout=1)["metadata"]["name"] == pvc["metadata"]["name"]


def test_wait_ready_for_jobs_complete_or_failed(rest, standin, api_client):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "op", "namespace": NAMESPACE},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "op", "image": "busybox"}]}}}}
    apply_object(rest, job)
    standin.set_job_finished(NAMESPACE, "op", succeeded=False, message="Job has reached the specified backoff limit")
    with pytest.raises(KubeError, match="Job/op failed: BackoffLimitExceeded Job has reached"):
        wait_ready(rest, job, timeout=1)
    standin.set_job_finished(NAMESPACE, "op", succeeded=True)
    assert wait_ready(rest, job, timeout=1)["status"]["succeeded"] == 1


def test_lease_lock_is_exclusive_and_names_holder_and_age(rest, api_client):
    first = LeaseLock(rest, NAMESPACE, "radiology-ai", holder="alice@ci/1", duration_seconds=60)
    first.acquire()
    second = LeaseLock(rest, NAMESPACE, "radiology-ai", holder="bob@laptop/2")
    with pytest.raises(LockHeld) as info:
        second.acquire(timeout=0)
    assert info.value.holder == "alice@ci/1" and 0 <= info.value.age_seconds < 30
    assert "claractl-radiology-ai is held by 'alice@ci/1' (acquired" in str(info.value)
    first.renew()
    first.release()
    second.acquire(timeout=0)
    lease = k8s.CoordinationV1Api(api_client).read_namespaced_lease("claractl-radiology-ai", NAMESPACE)
    assert lease.spec.holder_identity == "bob@laptop/2"
    assert "force-unlock bob@laptop/2" in str(pytest.raises(LockHeld, first.acquire, timeout=0).value)
    with pytest.raises(KubeError, match="held by 'bob@laptop/2', not 'alice@ci/1'; nothing released"):
        force_unlock(rest, NAMESPACE, "radiology-ai", lock_id="alice@ci/1")
    assert force_unlock(rest, NAMESPACE, "radiology-ai", lock_id="bob@laptop/2") is True
    assert force_unlock(rest, NAMESPACE, "radiology-ai") is False


def test_expired_lease_can_be_taken_over(rest, api_client):
    k8s.CoordinationV1Api(api_client).create_namespaced_lease(NAMESPACE, {
        "metadata": {"name": "claractl-radiology-ai"},
        "spec": {"holderIdentity": "crashed-run", "leaseDurationSeconds": 5,
                 "acquireTime": "2020-01-01T00:00:00.000000Z", "renewTime": "2020-01-01T00:00:00.000000Z"}})
    with LeaseLock(rest, NAMESPACE, "radiology-ai", holder="me") as lock:
        assert lock.holder == "me"
    assert rest.get(KINDS["Lease"], NAMESPACE, "claractl-radiology-ai") is None


def test_two_racing_lock_takers_exactly_one_wins(standin):
    winners = []

    def take(name):
        lock = LeaseLock(Rest(client_for(standin.url)), NAMESPACE, "race", holder=name)
        try:
            if lock.try_acquire():
                winners.append(name)
        except LockHeld:
            pass

    threads = [threading.Thread(target=take, args=(f"h{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


# ---- errors: each one clear line ----

def test_unreachable_cluster(project):
    port = free_port()                 # nothing listens there
    rest = Rest(client_for(f"http://127.0.0.1:{port}"), timeout=3)
    with pytest.raises(KubeError) as info:
        read_inventory(rest, NAMESPACE, project.name)
    message = str(info.value)
    assert message.startswith(f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}")
    assert "\n" not in message


def test_unauthorized_and_forbidden(standin, project):
    standin.token = "right"
    with pytest.raises(KubeError) as info:
        read_inventory(Rest(client_for(standin.url, "wrong")), NAMESPACE, project.name)
    assert "401 Unauthorized" in str(info.value) and "\n" not in str(info.value)
    rest = Rest(client_for(standin.url, "right"))
    standin.forbid = {"patch"}
    obj = desired_objects(project)[0].manifest
    with pytest.raises(KubeError) as info:
        apply_object(rest, obj)
    assert str(info.value) == ('apply ConfigMap/clara-platform: forbidden by RBAC: configmaps "clara-platform" is '
                               'forbidden: User "system:serviceaccount:default:claractl" cannot patch resource '
                               '"configmaps" in API group "" in the namespace "clara"')


def test_missing_namespace(rest, project):
    obj = desired_objects(make_project(namespace="absent"))[0].manifest
    with pytest.raises(KubeError) as info:
        apply_object(rest, obj)
    assert str(info.value) == ("apply ConfigMap/clara-platform: namespace 'absent' does not exist; "
                               "create it (kubectl create namespace) or set target.kubernetes.namespace")


def test_webhook_denial(rest, standin, project):
    standin.store.admission = lambda op, res, obj: ("images.policy.example", "image registry not allowed") \
        if res.kind == "Deployment" else None
    deployment = next(o.manifest for o in desired_objects(project) if o.kind == "Deployment")
    with pytest.raises(KubeError) as info:
        apply_object(rest, deployment)
    assert str(info.value) == ('apply Deployment/clara-platform: denied by admission webhook "images.policy.example" '
                               "denied the request: image registry not allowed")


def test_invalid_object_is_a_422_line(rest):
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid", "namespace": NAMESPACE}}
    with pytest.raises(KubeError, match=r"^apply ConfigMap/Not_Valid: rejected as invalid: ConfigMap \"Not_Valid\" is invalid: metadata.name"):
        apply_object(rest, bad)


# ---- kubeconfig ----

def write_kubeconfig(path, url, token="t", contexts=("dev", "prod")):
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
           "clusters": [{"name": "standin", "cluster": {"server": url}}],
           "users": [{"name": "u", "user": {"token": token}}],
           "contexts": [{"name": c, "context": {"cluster": "standin", "user": "u", "namespace": NAMESPACE}}
                        for c in contexts]}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_kubeconfig_from_env_with_context_and_token(standin, tmp_path, monkeypatch, project):
    standin.token = "secret-token"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", standin.url, "secret-token")))
    rest = Rest(load_api_client(context="prod"))
    assert read_inventory(rest, NAMESPACE, project.name) == []
    with pytest.raises(KubeError) as info:
        load_api_client(context="staging")
    assert str(info.value).startswith("context 'staging' is not in ") and "(available: dev, prod)" in str(info.value)


def test_missing_kubeconfig_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeError, match="no kubeconfig at .*nope: set KUBECONFIG"):
        load_api_client()


def test_in_cluster_config_is_used_in_a_pod(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    # No service-account files here: the in-cluster loader's own error, as one line.
    with pytest.raises(KubeError, match="^in-cluster config: "):
        load_api_client()


def test_lease_names_are_valid_for_any_project_name(rest):
    from claractl.kube.lock import lease_name
    assert lease_name("radiology-ai") == "claractl-radiology-ai"
    assert lease_name("Radiology_AI") != lease_name("radiology-ai")
    assert lease_name("Radiology_AI") != lease_name("radiology_ai")
    for project in ("Radiology_AI", "a.b", "X" * 63):
        with LeaseLock(rest, NAMESPACE, project, holder="me") as lock:
            assert rest.get(KINDS["Lease"], NAMESPACE, lock.name)["spec"]["holderIdentity"] == "me"
