"""The API server stand-in is honest: driven only through the official `kubernetes` client,
it behaves as a real API server does for everything the kubernetes target relies on."""

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


@pytest.fixture
def ssa(api_client):
    """Server-side apply through the official client's dynamic API (typed APIs cannot send apply patches)."""
    from kubernetes.dynamic import DynamicClient
    deployments = DynamicClient(api_client).resources.get(api_version="apps/v1", kind="Deployment")

    def apply(body, manager, force=False, dry_run=None):
        kwargs = {"dry_run": dry_run} if dry_run else {}
        return deployments.server_side_apply(body=body, namespace=NAMESPACE, field_manager=manager,
                                             force_conflicts=force, **kwargs).to_dict()
    return apply


@pytest.fixture
def core(api_client):
    return k8s.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client):
    return k8s.AppsV1Api(api_client)


def test_discovery_lists_groups_and_resources(api_client):
    assert "v1" in k8s.CoreApi(api_client).get_api_versions().versions
    groups = {g.name for g in k8s.ApisApi(api_client).get_api_versions().groups}
    assert {"apps", "batch", "rbac.authorization.k8s.io", "coordination.k8s.io"} <= groups
    resources = {r.name for r in k8s.AppsV1Api(api_client).get_api_resources().resources}
    assert {"deployments", "deployments/status"} <= resources


def test_create_sets_identity_and_rejects_duplicates(core):
    cm = core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert cm.metadata.uid and cm.metadata.creation_timestamp and cm.metadata.resource_version
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "a"}})
    assert info.value.status == 409 and status(info.value)["reason"] == "AlreadyExists"


def test_stale_resource_version_is_a_409_conflict(core):
    first = core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "cfg"}, "data": {"n": "1"}})
    stale = first.metadata.resource_version
    first.data = {"n": "2"}
    second = core.replace_namespaced_config_map("cfg", NAMESPACE, first)
    assert int(second.metadata.resource_version) > int(stale)
    first.metadata.resource_version = stale
    first.data = {"n": "3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("cfg", NAMESPACE, first)
    body = status(info.value)
    assert info.value.status == 409 and body["reason"] == "Conflict" and "has been modified" in body["message"]
    assert core.read_namespaced_config_map("cfg", NAMESPACE).data == {"n": "2"}


def test_missing_object_and_missing_namespace_are_404_status(core):
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("nope", NAMESPACE)
    body = status(info.value)
    assert info.value.status == 404 and body["reason"] == "NotFound" and body["details"]["name"] == "nope"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("elsewhere", {"metadata": {"name": "x"}})
    assert info.value.status == 404 and status(info.value)["details"] == {"name": "elsewhere", "kind": "namespaces"}


def test_invalid_objects_are_422_with_causes(core, apps):
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "Bad_Name"}})
    body = status(info.value)
    assert info.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as info:
        apps.create_namespaced_deployment(NAMESPACE, bad)
    assert info.value.status == 422 and "does not match template" in status(info.value)["message"]


def test_label_selectors_equality_and_set_based(core):
    for name, labels in [("a", {"tier": "db", "env": "prod"}), ("b", {"tier": "web", "env": "prod"}),
                         ("c", {"tier": "web"})]:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": name, "labels": labels}})

    def names(selector):
        return sorted(i.metadata.name for i in core.list_namespaced_config_map(NAMESPACE, label_selector=selector).items)

    assert names("tier=web") == ["b", "c"]
    assert names("tier==web,env=prod") == ["b"]
    assert names("tier!=web") == ["a"]
    assert names("tier in (db, web),env") == ["a", "b"]
    assert names("env notin (prod)") == ["c"]
    assert names("!env") == ["c"]
    assert names("") == ["a", "b", "c"]
    with pytest.raises(ApiException) as info:
        names("tier in (web")
    assert info.value.status == 400


def test_generation_moves_with_spec_not_with_metadata(apps):
    d = apps.create_namespaced_deployment(NAMESPACE, deployment())
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", NAMESPACE, {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2 and d.spec.replicas == 3


def managers(obj):
    return {(m["manager"], m["operation"]): m["fieldsV1"] for m in obj["metadata"]["managedFields"]}


def test_server_side_apply_tracks_ownership_and_conflicts_between_managers(ssa, apps):
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
    assert body["details"]["causes"] == [{"type": "FieldManagerConflict", "field": ".spec.replicas",
                                          "message": 'conflict with "team-a" using apps/v1'}]
    assert apps.read_namespaced_deployment("web", NAMESPACE).spec.replicas == 2
    # force takes the field over: team-a no longer owns it.
    d = ssa(shared, "team-b", force=True)
    owners = managers(d)
    assert d["spec"]["replicas"] == 5
    assert "f:replicas" not in owners[("team-a", "Apply")]["f:spec"]
    assert "f:replicas" in owners[("team-b", "Apply")]["f:spec"]


def test_apply_removes_fields_the_manager_stopped_applying_and_keeps_others(ssa, apps):
    cfg = deployment(labels={"app": "web", "old": "1"})
    ssa(cfg, "me")
    apps.patch_namespaced_deployment("web", NAMESPACE, {"metadata": {"labels": {"byhand": "yes"}}})   # an Update
    del cfg["metadata"]["labels"]["old"]
    d = ssa(cfg, "me")
    assert d["metadata"]["labels"] == {"app": "web", "byhand": "yes"}
    assert ("OpenAPI-Generator", "Update") in managers(d)


def test_update_by_another_manager_takes_ownership_so_apply_then_conflicts(ssa, apps):
    ssa(deployment(replicas=1), "claractl")
    apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 4}}, field_manager="kubectl-scale")
    with pytest.raises(ApiException) as info:
        ssa(deployment(replicas=1), "claractl")
    assert 'conflict with "kubectl-scale" using apps/v1: .spec.replicas' in status(info.value)["message"]


def test_keyed_lists_merge_by_key_between_managers(ssa):
    ssa(deployment(), "me")
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}}
    d = ssa(sidecar, "mesh")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["main", "sidecar"]
    d = ssa(deployment(image="nginx:2"), "me")
    assert {c["name"]: c["image"] for c in d["spec"]["template"]["spec"]["containers"]} == {"main": "nginx:2", "sidecar": "envoy:1"}


def test_dry_run_validates_but_stores_nothing(core, apps, ssa):
    before = core.list_namespaced_config_map(NAMESPACE).metadata.resource_version
    created = core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "dry"}}, dry_run="All")
    assert created.metadata.name == "dry"
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dry", NAMESPACE)
    ssa(deployment(), "me", dry_run="All")
    with pytest.raises(ApiException) as info:
        apps.read_namespaced_deployment("web", NAMESPACE)
    assert info.value.status == 404
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "BAD"}}, dry_run="All")
    assert info.value.status == 422
    assert core.list_namespaced_config_map(NAMESPACE).metadata.resource_version == before


def test_no_op_apply_keeps_resource_version(ssa):
    first = ssa(deployment(), "me")
    again = ssa(deployment(), "me")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = ssa(deployment(image="nginx:1.26"), "me")
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert changed["metadata"]["generation"] == 2


def test_status_changes_only_through_the_status_subresource(standin, apps):
    d = apps.create_namespaced_deployment(NAMESPACE, deployment())
    assert d.status is None or not d.status.available_replicas
    body = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment("web", NAMESPACE))
    apps.replace_namespaced_deployment("web", NAMESPACE, body | {"status": {"availableReplicas": 7}})
    assert not (apps.read_namespaced_deployment("web", NAMESPACE).status or k8s.V1DeploymentStatus()).available_replicas
    standin.set_deployment_available(NAMESPACE, "web")
    assert apps.read_namespaced_deployment_status("web", NAMESPACE).status.available_replicas == 1


def test_lease_semantics_through_crud_and_resource_version(api_client):
    leases = k8s.CoordinationV1Api(api_client)
    body = {"metadata": {"name": "lock"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 30}}
    lease = leases.create_namespaced_lease(NAMESPACE, body)
    with pytest.raises(ApiException) as info:
        leases.create_namespaced_lease(NAMESPACE, body)           # second taker loses
    assert info.value.status == 409
    lease.spec.holder_identity = "b"
    taken = leases.replace_namespaced_lease("lock", NAMESPACE, lease)
    lease.spec.holder_identity = "c"                               # stale copy: cannot steal
    with pytest.raises(ApiException) as info:
        leases.replace_namespaced_lease("lock", NAMESPACE, lease)
    assert info.value.status == 409
    assert leases.read_namespaced_lease("lock", NAMESPACE).spec.holder_identity == "b"
    with pytest.raises(ApiException) as info:
        leases.delete_namespaced_lease("lock", NAMESPACE, body=k8s.V1DeleteOptions(
            preconditions=k8s.V1Preconditions(resource_version=lease.metadata.resource_version)))
    assert info.value.status == 409
    leases.delete_namespaced_lease("lock", NAMESPACE, body=k8s.V1DeleteOptions(
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


def test_service_proxy_forwards_to_the_registered_url(standin, api_client):
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


def test_deleting_a_namespace_deletes_its_objects(standin, core):
    standin.create_namespace("tmp")
    core.create_namespaced_config_map("tmp", {"metadata": {"name": "a"}})
    core.delete_namespace("tmp")
    assert core.list_config_map_for_all_namespaces().items == [] or \
        all(i.metadata.namespace != "tmp" for i in core.list_config_map_for_all_namespaces().items)


def test_pod_logs_are_served_as_text(standin, core):
    core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": "op-1"},
                                           "spec": {"containers": [{"name": "op", "image": "busybox"}]}})
    standin.set_pod_log(NAMESPACE, "op-1", "line 1\nline 2\n")
    assert core.read_namespaced_pod_log("op-1", NAMESPACE) == "line 1\nline 2\n"
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log("missing", NAMESPACE)
    assert info.value.status == 404


def test_port_items_match_their_defaulted_protocol(api_client):
    from kubernetes.dynamic import DynamicClient
    services = DynamicClient(api_client).resources.get(api_version="v1", kind="Service")
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
            "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80}]}}
    first = services.server_side_apply(body=body, namespace=NAMESPACE, field_manager="me").to_dict()
    assert first["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]
    body["spec"]["ports"][0]["targetPort"] = 8080
    again = services.server_side_apply(body=body, namespace=NAMESPACE, field_manager="me").to_dict()
    assert again["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert again["spec"]["clusterIP"] == first["spec"]["clusterIP"]
