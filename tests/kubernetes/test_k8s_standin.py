"""The API server stand-in is honest: driven only through the official `kubernetes` client, it
behaves as a real API server does for everything the kubernetes target relies on. Each test
marked `both` runs the same requests against the stand-in and the real test cluster (a
differential test: where they disagree, the stand-in is wrong); the rest exercise the fault
switches only the stand-in has."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes.client as k8s
import pytest
from kubernetes.client.exceptions import ApiException

from conftest import NAMESPACE, client_for


def status(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return body


def deployment(name="web", replicas=1, image="nginx:1.25", labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


@pytest.fixture(params=["standin", "real"])
def server(request):
    """(api_client, namespace) of the stand-in or of the real cluster, for the same test body."""
    if request.param == "standin":
        standin = request.getfixturevalue("standin")
        return client_for(standin.url), NAMESPACE
    return request.getfixturevalue("api_client"), request.getfixturevalue("namespace")


@pytest.fixture
def ns(server):
    return server[1]


@pytest.fixture
def ssa(server):
    """Server-side apply through the official client's dynamic API (typed APIs cannot send apply patches)."""
    from kubernetes.dynamic import DynamicClient
    api_client, namespace = server
    deployments = DynamicClient(api_client).resources.get(api_version="apps/v1", kind="Deployment")

    def apply(body, manager, force=False, dry_run=None):
        kwargs = {"dry_run": dry_run} if dry_run else {}
        return deployments.server_side_apply(body=body, namespace=namespace, field_manager=manager,
                                             force_conflicts=force, **kwargs).to_dict()
    return apply


@pytest.fixture
def core(server):
    return k8s.CoreV1Api(server[0])


@pytest.fixture
def apps(server):
    return k8s.AppsV1Api(server[0])


@pytest.fixture
def standin_core(standin):
    return k8s.CoreV1Api(client_for(standin.url))


def test_discovery_lists_groups_and_resources(server, ns):
    assert "v1" in k8s.CoreApi(server[0]).get_api_versions().versions
    groups = {g.name for g in k8s.ApisApi(server[0]).get_api_versions().groups}
    assert {"apps", "batch", "rbac.authorization.k8s.io", "coordination.k8s.io"} <= groups
    resources = {r.name for r in k8s.AppsV1Api(server[0]).get_api_resources().resources}
    assert {"deployments", "deployments/status"} <= resources


def test_create_sets_identity_and_rejects_duplicates(core, ns):
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert cm.metadata.uid and cm.metadata.creation_timestamp and cm.metadata.resource_version
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}})
    assert info.value.status == 409 and status(info.value)["reason"] == "AlreadyExists"


def test_stale_resource_version_is_a_409_conflict(core, ns):
    first = core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"n": "1"}})
    stale = first.metadata.resource_version
    first.data = {"n": "2"}
    second = core.replace_namespaced_config_map("cfg", ns, first)
    assert int(second.metadata.resource_version) > int(stale)
    first.metadata.resource_version = stale
    first.data = {"n": "3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("cfg", ns, first)
    body = status(info.value)
    assert info.value.status == 409 and body["reason"] == "Conflict" and "has been modified" in body["message"]
    assert core.read_namespaced_config_map("cfg", ns).data == {"n": "2"}


def test_missing_object_and_missing_namespace_are_404_status(core, ns):
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("nope", ns)
    body = status(info.value)
    assert info.value.status == 404 and body["reason"] == "NotFound" and body["details"]["name"] == "nope"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("elsewhere", {"metadata": {"name": "x"}})
    assert info.value.status == 404 and status(info.value)["details"] == {"name": "elsewhere", "kind": "namespaces"}


def test_invalid_objects_are_422_with_causes(core, apps, ns):
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "Bad_Name"}})
    body = status(info.value)
    assert info.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as info:
        apps.create_namespaced_deployment(ns, bad)
    assert info.value.status == 422 and "does not match template" in status(info.value)["message"]


def test_label_selectors_equality_and_set_based(core, ns):
    for name, labels in [("a", {"tier": "db", "env": "prod"}), ("b", {"tier": "web", "env": "prod"}),
                         ("c", {"tier": "web"})]:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": {"t": "1", **labels}}})

    def names(selector):
        # "t," keeps the namespace's own ConfigMaps (a real one holds kube-root-ca.crt) out of `!=` and `notin`
        selector = f"t,{selector}" if selector else ""
        return sorted(i.metadata.name for i in core.list_namespaced_config_map(ns, label_selector=selector).items)

    assert names("tier=web") == ["b", "c"]
    assert names("tier==web,env=prod") == ["b"]
    assert names("tier!=web") == ["a"]
    assert names("tier in (db, web),env") == ["a", "b"]
    assert names("env notin (prod)") == ["c"]
    assert names("!env") == ["c"]
    assert {"a", "b", "c"} <= set(names(""))
    with pytest.raises(ApiException) as info:
        names("tier in (web")
    assert info.value.status == 400


def test_generation_moves_with_spec_not_with_metadata(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment())
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2 and d.spec.replicas == 3


def managers(obj):
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}


def test_server_side_apply_tracks_ownership_and_conflicts_between_managers(ssa, apps, ns):
    d = ssa(deployment(replicas=2), "team-a")
    assert list(managers(d)) == [("team-a", "Apply")]
    assert "f:replicas" in managers(d)[("team-a", "Apply")]["f:spec"]
    # Another manager applying the same value shares ownership: no conflict.
    shared = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}
    ssa(shared, "team-b")
    # A different value for a field team-a owns is a conflict naming team-a and the field.
    shared["spec"]["replicas"] = 5
    with pytest.raises(ApiException) as info:
        ssa(shared, "team-b")
    body = status(info.value)
    assert info.value.status == 409 and 'conflict with "team-a"' in body["message"]
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                          "message": 'conflict with "team-a"'}]
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2
    # force takes the field over: team-a no longer owns it.
    d = ssa(shared, "team-b", force=True)
    owners = managers(d)
    assert d["spec"]["replicas"] == 5
    assert "f:replicas" not in owners[("team-a", "Apply")]["f:spec"]
    assert "f:replicas" in owners[("team-b", "Apply")]["f:spec"]


def test_apply_removes_fields_the_manager_stopped_applying_and_keeps_others(ssa, apps, ns):
    cfg = deployment(labels={"app": "web", "old": "1"})
    ssa(cfg, "me")
    apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"byhand": "yes"}}})   # an Update
    del cfg["metadata"]["labels"]["old"]
    d = ssa(cfg, "me")
    assert d["metadata"]["labels"] == {"app": "web", "byhand": "yes"}
    assert ("OpenAPI-Generator", "Update") in managers(d)


def test_update_by_another_manager_takes_ownership_so_apply_then_conflicts(ssa, apps, ns):
    ssa(deployment(replicas=1), "claractl")
    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 4}}, field_manager="kubectl-scale")
    with pytest.raises(ApiException) as info:
        ssa(deployment(replicas=1), "claractl")
    assert 'conflict with "kubectl-scale" using apps/v1: .spec.replicas' in status(info.value)["message"]


def test_keyed_lists_merge_by_key_between_managers(ssa, ns):
    ssa(deployment(), "me")
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}}
    d = ssa(sidecar, "mesh")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["main", "sidecar"]
    d = ssa(deployment(image="nginx:2"), "me")
    assert {c["name"]: c["image"] for c in d["spec"]["template"]["spec"]["containers"]} == {"main": "nginx:2", "sidecar": "envoy:1"}


def test_dry_run_validates_but_stores_nothing(core, apps, ssa, ns):
    before = sorted(c.metadata.name for c in core.list_namespaced_config_map(ns).items)
    created = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}}, dry_run="All")
    assert created.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", ns)
    ssa(deployment(), "me", dry_run="All")
    with pytest.raises(ApiException) as info:
        apps.read_namespaced_deployment("web", ns)
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "BAD"}}, dry_run="All")
    assert info.value.status == 422
    assert sorted(c.metadata.name for c in core.list_namespaced_config_map(ns).items) == before


def test_no_op_apply_keeps_resource_version(server, ssa, ns):
    # A ConfigMap: on a real cluster no controller writes to it between the two applies.
    from kubernetes.dynamic import DynamicClient
    configmaps = DynamicClient(server[0]).resources.get(api_version="v1", kind="ConfigMap")

    def apply(data):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}
        return configmaps.server_side_apply(body=body, namespace=ns, field_manager="me").to_dict()
    first = apply({"a": "1"})
    again = apply({"a": "1"})
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = apply({"a": "2"})
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    # and a Deployment's generation moves with its spec
    ssa(deployment(), "me")
    assert ssa(deployment(image="nginx:1.26"), "me")["metadata"]["generation"] == 2


def test_status_changes_only_through_the_status_subresource(standin):
    apps = k8s.AppsV1Api(client_for(standin.url))
    d = apps.create_namespaced_deployment(NAMESPACE, deployment())
    assert d.status is None or not d.status.available_replicas
    body = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment("web", NAMESPACE))
    apps.replace_namespaced_deployment("web", NAMESPACE, body | {"status": {"availableReplicas": 7}})
    assert not (apps.read_namespaced_deployment("web", NAMESPACE).status or k8s.V1DeploymentStatus()).available_replicas
    standin.set_deployment_available(NAMESPACE, "web")
    assert apps.read_namespaced_deployment_status("web", NAMESPACE).status.available_replicas == 1


def test_lease_semantics_through_crud_and_resource_version(server, ns):
    leases = k8s.CoordinationV1Api(server[0])
    body = {"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30}}
    lease = leases.create_namespaced_lease(ns, body)
    with pytest.raises(ApiException) as info:
        leases.create_namespaced_lease(ns, body)           # second taker loses
    assert info.value.status == 409
    lease.spec.holder_identity = "b"
    taken = leases.replace_namespaced_lease("lock", ns, lease)
    lease.spec.holder_identity = "c"                               # stale copy: cannot steal
    with pytest.raises(ApiException) as info:
        leases.replace_namespaced_lease("lock", ns, lease)
    assert info.value.status == 409
    assert leases.read_namespaced_lease("lock", ns).spec.holder_identity == "b"
    with pytest.raises(ApiException) as info:
        leases.delete_namespaced_lease("lock", ns, body=k8s.V1DeleteOptions(
            preconditions=k8s.V1Preconditions(resource_version=lease.metadata.resource_version)))
    assert info.value.status == 409
    leases.delete_namespaced_lease("lock", ns, body=k8s.V1DeleteOptions(
        preconditions=k8s.V1Preconditions(resource_version=taken.metadata.resource_version)))


def test_auth_modes_and_admission_denial(standin):
    standin.token = "good"
    with pytest.raises(ApiException) as info:
        k8s.CoreV1Api(client_for(standin.url, "bad")).list_namespaced_config_map(NAMESPACE)
    assert info.value.status == 401
    api = k8s.CoreV1Api(client_for(standin.url, "good"))
    assert api.list_namespaced_config_map(NAMESPACE).items == []
    standin.forbid = {"create"}
    with pytest.raises(ApiException) as info:
        api.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "x"}})
    assert info.value.status == 403 and "cannot create resource" in status(info.value)["message"]
    standin.forbid = set()
    standin.store.admission = lambda op, res, obj: ("policy.example.com", "no ConfigMaps on Fridays") \
        if res.kind == "ConfigMap" else None
    with pytest.raises(ApiException) as info:
        api.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "x"}})
    assert info.value.status == 403
    assert status(info.value)["message"] == 'admission webhook "policy.example.com" denied the request: no ConfigMaps on Fridays'


def test_service_proxy_forwards_to_the_registered_url(standin):
    api_client = client_for(standin.url)
    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        standin.register_proxy(NAMESPACE, "clara-platform", "8765", f"http://127.0.0.1:{backend.server_address[1]}")
        data = k8s.CoreV1Api(api_client).connect_get_namespaced_service_proxy_with_path(
            "clara-platform:8765", NAMESPACE, "api/v1/health", _preload_content=False)
        assert json.loads(data.data) == {"path": "/api/v1/health"}
        with pytest.raises(ApiException) as info:
            k8s.CoreV1Api(api_client).connect_get_namespaced_service_proxy_with_path(
                "missing:80", NAMESPACE, "x")
        assert info.value.status == 404
    finally:
        backend.shutdown()
        backend.server_close()


def test_deleting_a_namespace_deletes_its_objects(standin, standin_core):
    standin.create_namespace("tmp")
    standin_core.create_namespaced_config_map("tmp", {"metadata": {"name": "a"}})
    standin_core.delete_namespace("tmp")
    assert standin_core.list_config_map_for_all_namespaces().items == [] or \
        all(i.metadata.namespace != "tmp" for i in standin_core.list_config_map_for_all_namespaces().items)


def test_pod_logs_are_served_as_text(standin, standin_core):
    standin_core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": "op-1"},
                                           "spec": {"containers": [{"name": "op", "image": "busybox"}]}})
    standin.set_pod_log(NAMESPACE, "op-1", "line 1\nline 2\n")
    assert standin_core.read_namespaced_pod_log("op-1", NAMESPACE) == "line 1\nline 2\n"
    with pytest.raises(ApiException) as info:
        standin_core.read_namespaced_pod_log("missing", NAMESPACE)
    assert info.value.status == 404


def test_port_items_match_their_defaulted_protocol(server, ns):
    from kubernetes.dynamic import DynamicClient
    services = DynamicClient(server[0]).resources.get(api_version="v1", kind="Service")
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
            "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]}}
    first = services.server_side_apply(body=body, namespace=ns, field_manager="me").to_dict()
    assert first["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    body["spec"]["ports"][0]["targetPort"] = 8080
    again = services.server_side_apply(body=body, namespace=ns, field_manager="me").to_dict()
    assert again["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert again["spec"]["clusterIP"] == first["spec"]["clusterIP"]


# ---- what the stand-in used to accept and a real server refuses ----

def test_apply_with_a_stale_resource_version_is_a_409_conflict(ssa, ns):
    first = ssa(deployment(), "me")
    ssa(deployment(image="nginx:1.26"), "me")
    stale = deployment(image="nginx:1.27")
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as info:
        ssa(stale, "me")
    assert info.value.status == 409 and "the object has been modified" in status(info.value)["message"]


def test_apply_to_the_status_subresource_changes_status_and_only_status(server, ssa, ns):
    ssa(deployment(), "me")
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "status": {"conditions": [{"type": "Tested", "status": "True", "reason": "Tested",
                                       "message": "set by the test"}]}}
    applied, _code, _headers = server[0].call_api(
        f"/apis/apps/v1/namespaces/{ns}/deployments/web/status", "PATCH", body=body,
        query_params=[("fieldManager", "tester"), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        response_type="object", auth_settings=["BearerToken"])
    conditions = {c["type"]: c for c in applied["status"]["conditions"]}
    assert conditions["Tested"]["message"] == "set by the test"
    entry = next(m for m in applied["metadata"]["managedFields"] if m["manager"] == "tester")
    assert entry["subresource"] == "status" and entry["operation"] == "Apply"


@pytest.mark.parametrize("change", ["pvc-storage-class", "job-template", "deployment-selector", "service-cluster-ip"])
def test_immutable_fields_are_a_422(server, ns, change):
    from kubernetes.dynamic import DynamicClient
    dyn = DynamicClient(server[0])

    def apply(kind, api_version, body):
        return dyn.resources.get(api_version=api_version, kind=kind).server_side_apply(
            body=body, namespace=ns, field_manager="me", force_conflicts=True)

    if change == "pvc-storage-class":
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                        "resources": {"requests": {"storage": "1Gi"}}}}
        apply("PersistentVolumeClaim", "v1", pvc)
        pvc["spec"]["storageClassName"] = "fast"
        kind, api_version, body = "PersistentVolumeClaim", "v1", pvc
    elif change == "job-template":
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
               "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                                                               "containers": [{"name": "c", "image": "busybox:1"}]}}}}
        apply("Job", "batch/v1", job)
        job["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        kind, api_version, body = "Job", "batch/v1", job
    elif change == "deployment-selector":
        ssa_body = deployment()
        apply("Deployment", "apps/v1", ssa_body)
        ssa_body["spec"]["selector"]["matchLabels"]["tier"] = "x"
        ssa_body["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
        kind, api_version, body = "Deployment", "apps/v1", ssa_body
    else:
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"clusterIP": "None", "selector": {"app": "x"}, "ports": [{"name": "p", "port": 80}]}}
        apply("Service", "v1", svc)
        svc["spec"]["clusterIP"] = ""
        svc["spec"].pop("clusterIP")
        svc["spec"]["clusterIPs"] = ["10.43.0.99"] if server[1] != NAMESPACE else ["10.96.0.99"]
        kind, api_version, body = "Service", "v1", svc
    with pytest.raises(ApiException) as info:
        apply(kind, api_version, body)
    assert info.value.status == 422 and status(info.value)["reason"] == "Invalid"


def test_pod_log_refuses_a_text_plain_accept_header(server, ns, core):
    core.create_namespaced_pod(ns, {"metadata": {"name": "op-1"}, "spec": {
        "containers": [{"name": "op", "image": "localhost/claractl-test/busybox:1", "command": ["true"]}]}})
    with pytest.raises(ApiException) as info:
        server[0].call_api(f"/api/v1/namespaces/{ns}/pods/op-1/log", "GET", header_params={"Accept": "text/plain"},
                           response_type="str", auth_settings=["BearerToken"], _preload_content=False)
    assert info.value.status == 406
