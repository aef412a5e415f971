"""The cluster layer (claractl/kube) against the real API server: apply the rendered charts,
re-read the inventory, see no diff; drift, conflicts, force, prune, waiting with pod-level
reasons, the Lease lock, kubeconfig credentials, and errors as one line each."""

from __future__ import annotations

import threading
import time

import kubernetes.client as k8s
import pytest
import yaml

from claractl.kube.client import INVENTORY_KINDS
from claractl.targets.kubernetes import (
    KINDS, ApplyConflict, KubeError, LeaseLock, LockHeld, Rest, WaitTimeout, apply_object, delete_object, existing_owner,
    desired_objects, field_changes, force_unlock, load_api_client, normalize_for_diff, read_inventory, wait_ready,
)
from cluster import BUSYBOX, PAUSE
from conftest import Secret, blueprint_services, client_for, make_project
from tests.ports import free_port


def apply_all(rest, project, **kwargs):
    objects = desired_objects(project, reveal_secrets=True)
    for obj in objects:
        apply_object(rest, obj.manifest, **kwargs)
    return objects


def live_index(rest, project):
    ns = project.target.kubernetes["namespace"]
    return {(o["kind"], o["metadata"]["name"]): o for o in read_inventory(rest, ns, project.name)}


def diffs(rest, project):
    live = live_index(rest, project)
    return {o.address: field_changes(o.manifest, live.get((o.kind, o.name)))
            for o in desired_objects(project, reveal_secrets=True)
            if field_changes(o.manifest, live.get((o.kind, o.name)))}


def deployment(namespace, name="web", image=PAUSE, **container):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "main", "image": image,
                                                           "imagePullPolicy": "IfNotPresent", **container}]}}}}


@pytest.mark.parametrize("services", [
    blueprint_services(),
    {**blueprint_services(), "platform": {"database": Secret("DB", "postgresql://u:pw@db/clara")},
     "dicom-adapter": {"service-type": "NodePort"}, "triton": {"gpus": 2}},
], ids=["blueprint", "postgres-nodeport-gpus"])
def test_apply_then_reread_shows_no_changes(rest, namespace, services):
    project = make_project(services, namespace=namespace)
    objects = apply_all(rest, project)
    # The server rewrites quantities ("1" for 1, "4Gi" for 4096Mi), defaults protocols and
    # ports, adds cluster IPs: none of it is a change.
    assert diffs(rest, project) == {}
    live = live_index(rest, project)
    assert set(live) == {(o.kind, o.name) for o in objects}
    assert live[("Service", "clara-platform")]["spec"]["clusterIP"]
    managers = {m["manager"] for o in live.values() for m in o["metadata"]["managedFields"]
                if m.get("subresource") != "status"}
    # Controllers annotate what they manage (revision, PVC binding): only those share the objects.
    assert "claractl" in managers and managers - {"claractl"} <= {"kube-controller-manager"}
    # A second apply changes nothing on the server: claractl's write stamps stay as they were
    # (resourceVersions cannot tell: controllers keep writing the Deployments' status).
    stamps = applied_stamps(rest, project)
    time.sleep(1.1)                       # managedFields times have one-second resolution
    apply_all(rest, project)
    assert applied_stamps(rest, project) == stamps


def applied_stamps(rest, project):
    return {k: (o["metadata"].get("generation"),
                [m.get("time") for m in o["metadata"]["managedFields"] if m["manager"] == "claractl"])
            for k, o in live_index(rest, project).items()}


def test_quantities_compare_by_value(rest, namespace):
    """Fix 3: the API server returns quantities as canonical strings."""
    dep = deployment(namespace, resources={"requests": {"cpu": 0.5, "memory": "1073741824"},
                                           "limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": 1}})
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu")  # no GPU node here
    live = apply_object(rest, dep)
    resources = live["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == "500m" and resources["limits"]["memory"] == "1Gi"  # the server's spelling
    assert field_changes(dep, live) == []
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1"
    assert field_changes(dep, live) == [
        (".spec.template.spec.containers[name=main].resources.limits.cpu", "500m", "1")]


def test_inventory_is_one_list_request_per_kind_whatever_the_object_count(rest, project):
    apply_all(rest, project)
    calls = []
    original = rest.call
    rest.call = lambda method, path, *a, **kw: (calls.append((method, path)), original(method, path, *a, **kw))[1]
    objects = read_inventory(rest, project.target.kubernetes["namespace"], project.name)
    assert len(calls) == len(INVENTORY_KINDS) and all(method == "GET" for method, _ in calls)
    assert len(objects) == 12 and all(o["apiVersion"] and o["kind"] for o in objects)


def test_inventory_never_includes_objects_of_other_projects_or_made_by_hand(rest, api_client, namespace, project):
    apply_all(rest, project)
    other = make_project(name="other-project", services={"platform": {"api-port": 9000}}, namespace=namespace)
    # Same namespace, same object names: a planned create must notice the other owner first.
    other_objects = desired_objects(other)
    assert {existing_owner(rest, o.manifest) for o in other_objects} == {"radiology-ai"}
    k8s.CoreV1Api(api_client).create_namespaced_config_map(namespace, {"metadata": {"name": "by-hand"}})
    assert existing_owner(rest, {"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "by-hand", "namespace": namespace}}) == ""
    for obj in other_objects:
        obj.manifest["metadata"]["name"] = "other-" + obj.name
        apply_object(rest, obj.manifest)
    mine = read_inventory(rest, namespace, project.name)
    assert len(mine) == 12
    assert {o["metadata"]["labels"]["claractl.dev/project"] for o in mine} == {"radiology-ai"}
    assert not {o["metadata"]["name"] for o in mine} & {"by-hand", "other-clara-platform"}
    assert len(read_inventory(rest, namespace, "other-project")) == len(other_objects)


def test_a_field_changed_by_another_manager_shows_as_drift(rest, api_client, namespace, project):
    apply_all(rest, project)
    k8s.AppsV1Api(api_client).patch_namespaced_deployment(
        "clara-platform", namespace, {"spec": {"replicas": 3}}, field_manager="kubectl-scale")
    k8s.CoreV1Api(api_client).patch_namespaced_service(
        "clara-dicom-adapter", namespace, {"spec": {"type": "NodePort"}}, field_manager="kubectl-edit")
    assert diffs(rest, project) == {
        "service.platform/Deployment/clara-platform": [(".spec.replicas", 3, 1)],
        "service.dicom-adapter/Service/clara-dicom-adapter": [(".spec.type", "NodePort", "ClusterIP")],
    }


def test_conflicting_apply_is_reported_with_the_other_manager_and_force_takes_over(rest, api_client, namespace, project):
    apply_all(rest, project)
    apps = k8s.AppsV1Api(api_client)
    apps.patch_namespaced_deployment("clara-triton", namespace, {"spec": {"replicas": 2}}, field_manager="kubectl-scale")
    triton = next(o for o in desired_objects(project) if o.address == "service.triton/Deployment/clara-triton")
    with pytest.raises(ApplyConflict) as info:
        apply_object(rest, triton.manifest)
    assert info.value.conflicts == [("kubectl-scale", ".spec.replicas")]
    message = str(info.value)
    assert "Deployment/clara-triton" in message and "'kubectl-scale'" in message and "--force-conflicts" in message
    assert "\n" not in message
    assert apps.read_namespaced_deployment("clara-triton", namespace).spec.replicas == 2   # not overwritten
    apply_object(rest, triton.manifest, force_conflicts=True)
    assert apps.read_namespaced_deployment("clara-triton", namespace).spec.replicas == 1
    assert diffs(rest, project) == {}


def test_changed_values_show_field_level_changes_and_dry_run_writes_nothing(rest, namespace, project):
    apply_all(rest, project)
    changed = make_project({**blueprint_services(), "triton": {"gpus": 2}, "platform": {"workers": 4}}, namespace=namespace)
    drift = diffs(rest, changed)
    assert drift["service.triton/Deployment/clara-triton"] == [
        (".spec.template.spec.containers[name=triton].resources.limits.nvidia.com/gpu", "1", 2)]
    assert "service.platform/ConfigMap/clara-platform" in drift
    stamps = applied_stamps(rest, project)
    time.sleep(1.1)                       # managedFields times have one-second resolution
    for obj in desired_objects(changed, reveal_secrets=True):
        apply_object(rest, obj.manifest, dry_run=True)
    assert applied_stamps(rest, project) == stamps          # nothing written
    assert diffs(rest, changed)


def test_secret_values_never_appear_in_field_changes(rest, namespace):
    services = {**blueprint_services(), "platform": {"database": Secret("DB", "postgresql://u:first@db/c")}}
    apply_all(rest, make_project(services, namespace=namespace))
    services["platform"]["database"] = Secret("DB", "postgresql://u:second@db/c")
    drift = diffs(rest, make_project(services, namespace=namespace))
    assert drift["service.platform/Secret/clara-platform-database"] == [(".data.url", "(sensitive)", "(sensitive)")]


def test_prune_deletes_objects_no_longer_rendered_and_nothing_else(rest, api_client, namespace, project):
    apply_all(rest, project)
    k8s.CoreV1Api(api_client).create_namespaced_config_map(namespace, {"metadata": {"name": "by-hand"}})
    smaller = make_project({**blueprint_services(), "triton": {"enabled": False}}, namespace=namespace)
    wanted = {(o.kind, o.name) for o in desired_objects(smaller)}
    stale = [o for o in read_inventory(rest, namespace, smaller.name) if (o["kind"], o["metadata"]["name"]) not in wanted]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in stale) == [
        ("Deployment", "clara-triton"), ("PersistentVolumeClaim", "clara-triton-models"), ("Service", "clara-triton")]
    for obj in stale:
        assert delete_object(rest, obj) is True
    assert delete_object(rest, next(o for o in stale if o["kind"] == "Service")) is False   # already gone
    assert "by-hand" in {c.metadata.name for c in k8s.CoreV1Api(api_client).list_namespaced_config_map(namespace).items}


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


# ---- waiting: readiness and the pod-level reason ----

def test_wait_ready_waits_for_available(rest, namespace):
    dep = deployment(namespace)
    apply_object(rest, dep)
    said = []
    live = wait_ready(rest, dep, timeout=120, poll=0.2, progress=said.append)
    assert live["status"]["availableReplicas"] == 1
    assert said and all("replicas" in s or "controller" in s or "Pod" in s for s in said)


def test_wait_names_an_image_pull_failure(rest, namespace):
    """Fix 6: a failed wait says why the pods are not ready."""
    dep = deployment(namespace, image="localhost/claractl-test/no-such-image:1")
    apply_object(rest, dep)
    with pytest.raises(WaitTimeout) as info:
        wait_ready(rest, dep, timeout=8, poll=0.5)
    message = str(info.value)
    assert message.startswith("Deployment/web not ready after 8s: 0/1 replicas available; Pod web-")
    assert "container main: ErrImagePull" in message or "container main: ImagePullBackOff" in message


def test_wait_names_a_crash_loop(rest, namespace):
    # (A readiness probe, as every claractl workload has: without one a crashing container counts
    # as available for the moment it runs.)
    dep = deployment(namespace, image=BUSYBOX, command=["sh", "-c", "sleep 1; exit 3"],
                     readinessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1})
    apply_object(rest, dep)
    with pytest.raises(WaitTimeout) as info:
        wait_ready(rest, dep, timeout=12, poll=0.5)
    # Caught while waiting to restart, or just after the exit: either way the exit code is named.
    assert "container main" in str(info.value) and "exited with code 3 (Error)" in str(info.value)


def test_wait_names_insufficient_cpu(rest, namespace):
    dep = deployment(namespace, resources={"requests": {"cpu": "64"}})
    apply_object(rest, dep)
    with pytest.raises(WaitTimeout) as info:
        wait_ready(rest, dep, timeout=5, poll=0.5)
    assert "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu" in str(info.value)


def job(namespace, name, script):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "op", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                "command": ["sh", "-c", script]}]}}}}


def test_wait_ready_for_jobs_complete_or_failed(rest, namespace):
    ok, bad = job(namespace, "ok", "true"), job(namespace, "bad", "exit 1")
    apply_object(rest, ok)
    apply_object(rest, bad)
    assert wait_ready(rest, ok, timeout=60, poll=0.3)["status"]["succeeded"] == 1
    with pytest.raises(KubeError, match="Job/bad failed: BackoffLimitExceeded Job has reached the specified backoff limit"):
        wait_ready(rest, bad, timeout=60, poll=0.3)


# ---- the Lease lock ----

def test_lease_lock_is_exclusive_and_names_holder_and_age(rest, api_client, namespace):
    first = LeaseLock(rest, namespace, "radiology-ai", holder="alice@ci/1", duration_seconds=60)
    first.acquire()
    second = LeaseLock(rest, namespace, "radiology-ai", holder="bob@laptop/2")
    with pytest.raises(LockHeld) as info:
        second.acquire(timeout=0)
    assert info.value.holder == "alice@ci/1" and 0 <= info.value.age_seconds < 30
    assert "claractl-radiology-ai is held by 'alice@ci/1' (acquired" in str(info.value)
    first.renew()
    first.release()
    second.acquire(timeout=0)
    lease = k8s.CoordinationV1Api(api_client).read_namespaced_lease("claractl-radiology-ai", namespace)
    assert lease.spec.holder_identity == "bob@laptop/2"
    assert "force-unlock bob@laptop/2" in str(pytest.raises(LockHeld, first.acquire, timeout=0).value)
    with pytest.raises(KubeError, match="held by 'bob@laptop/2', not 'alice@ci/1'; nothing released"):
        force_unlock(rest, namespace, "radiology-ai", lock_id="alice@ci/1")
    assert force_unlock(rest, namespace, "radiology-ai", lock_id="bob@laptop/2") is True
    assert force_unlock(rest, namespace, "radiology-ai") is False


def test_expired_lease_can_be_taken_over(rest, api_client, namespace):
    k8s.CoordinationV1Api(api_client).create_namespaced_lease(namespace, {
        "metadata": {"name": "claractl-radiology-ai"},
        "spec": {"holderIdentity": "crashed-run", "leaseDurationSeconds": 5,
                 "acquireTime": "2020-01-01T00:00:00.000000Z", "renewTime": "2020-01-01T00:00:00.000000Z"}})
    with LeaseLock(rest, namespace, "radiology-ai", holder="me") as lock:
        assert lock.holder == "me"
    assert rest.get(KINDS["Lease"], namespace, "claractl-radiology-ai") is None


def test_two_racing_lock_takers_exactly_one_wins(cluster, namespace):
    winners = []

    def take(name):
        lock = LeaseLock(cluster.rest(), namespace, "race", holder=name)
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


def test_lease_names_are_valid_for_any_project_name(rest, namespace):
    from claractl.kube.lock import lease_name
    assert lease_name("radiology-ai") == "claractl-radiology-ai"
    assert lease_name("Radiology_AI") != lease_name("radiology-ai")
    assert lease_name("Radiology_AI") != lease_name("radiology_ai")
    for project in ("Radiology_AI", "a.b", "X" * 63):
        with LeaseLock(rest, namespace, project, holder="me") as lock:
            assert rest.get(KINDS["Lease"], namespace, lock.name)["spec"]["holderIdentity"] == "me"


# ---- errors: each one clear line ----

def test_unreachable_cluster(project):
    port = free_port()                 # nothing listens there
    rest = Rest(client_for(f"http://127.0.0.1:{port}"), timeout=3)
    with pytest.raises(KubeError) as info:
        read_inventory(rest, "clara", project.name)
    message = str(info.value)
    assert message.startswith(f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}")
    assert "\n" not in message


def kubeconfig_with_token(cluster, tmp_path, token):
    doc = yaml.safe_load(cluster.kubeconfig.read_text())
    doc["users"] = [{"name": "u", "user": {"token": token}}]
    for ctx in doc["contexts"]:
        ctx["context"]["user"] = "u"
    path = tmp_path / "token.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_unauthorized(cluster, tmp_path, namespace):
    rest = Rest(load_api_client(kubeconfig=str(kubeconfig_with_token(cluster, tmp_path, "not-a-token"))))
    with pytest.raises(KubeError) as info:
        read_inventory(rest, namespace, "radiology-ai")
    assert "401 Unauthorized" in str(info.value) and "\n" not in str(info.value)


def test_forbidden_by_rbac(cluster, rest, api_client, namespace, tmp_path, project):
    """A ServiceAccount that may only read: the apply's 403 names the verb, resource and user."""
    core = k8s.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac = k8s.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]})
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    reader = Rest(load_api_client(kubeconfig=str(kubeconfig_with_token(cluster, tmp_path, token))))
    obj = desired_objects(project)[0].manifest
    with pytest.raises(KubeError) as info:
        apply_object(reader, obj)
    assert str(info.value) == (f'apply ConfigMap/clara-platform: forbidden by RBAC: configmaps "clara-platform" is '
                               f'forbidden: User "system:serviceaccount:{namespace}:reader" cannot patch resource '
                               f'"configmaps" in API group "" in the namespace "{namespace}"')


def test_missing_namespace(rest):
    obj = desired_objects(make_project(namespace="absent-namespace"))[0].manifest
    with pytest.raises(KubeError) as info:
        apply_object(rest, obj)
    assert str(info.value) == ("apply ConfigMap/clara-platform: namespace 'absent-namespace' does not exist; "
                               "create it (kubectl create namespace) or set target.kubernetes.namespace")


def test_invalid_object_is_a_422_line(rest, namespace):
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid", "namespace": namespace}}
    with pytest.raises(KubeError, match=r'^apply ConfigMap/Not_Valid: rejected as invalid: ConfigMap "Not_Valid" is invalid: metadata.name'):
        apply_object(rest, bad)


def test_webhook_denial(standin_rest, standin):
    """The one fault here the test cluster cannot produce (it runs no admission webhooks): the stand-in."""
    standin.store.admission = lambda op, res, obj: ("images.policy.example", "image registry not allowed") \
        if res.kind == "Deployment" else None
    deployment_manifest = next(o.manifest for o in desired_objects(make_project()) if o.kind == "Deployment")
    with pytest.raises(KubeError) as info:
        apply_object(standin_rest, deployment_manifest)
    assert str(info.value) == ('apply Deployment/clara-platform: denied by admission webhook "images.policy.example" '
                               "denied the request: image registry not allowed")


# ---- kubeconfig ----

def test_kubeconfig_context_and_token(cluster, tmp_path, namespace):
    token_kubeconfig = cluster.kubeconfig.parent / "token.kubeconfig"     # ../shared/kube makes one
    if not token_kubeconfig.exists():
        pytest.fail(f"{token_kubeconfig} is missing: this test needs a token kubeconfig next to the cluster's")
    doc = yaml.safe_load(token_kubeconfig.read_text())
    base = doc["contexts"][0]["context"]
    doc["contexts"] = [{"name": c, "context": dict(base)} for c in ("dev", "prod")]
    doc["current-context"] = "dev"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    rest = Rest(load_api_client(context="prod", kubeconfig=str(path)))
    assert read_inventory(rest, namespace, "radiology-ai") == []
    with pytest.raises(KubeError) as info:
        load_api_client(context="staging", kubeconfig=str(path))
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
