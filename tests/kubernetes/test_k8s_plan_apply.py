"""plan / apply / prune / destroy on the kubernetes target through the CLI, against the real
cluster: the platform runs in its pod (claractl/platform image), its pipelines, models, AE titles,
sources and destinations go through the API server's service proxy with the kubeconfig's client
certificate. Each fix of issue 12 that needs the whole target has its test here."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import kubernetes.client as k8s
import pytest
import yaml
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.kube.client import INVENTORY_KINDS, Rest, load_api_client
from claractl.kube.lock import LeaseLock
from claractl.platform.client import ApiError
from claractl.targets.kubernetes.target import ProxiedPlatformClient
from cluster import BUSYBOX
from test_k8s_target import kubeconfig_with_token
from tests.plan.projects import write_model

PIPELINE = """api-version: 0.6.0
name: hello
operators:
- name: echo
  container: {image: claractl/echo, command: [python, -c, "print(1)"]}
  input: [{path: /input}]
  output: [{path: /output}]
"""
KUBECTL = "/tmp/claractl-kube/bin/kubectl"


def write_project(root: Path, namespace: str, render: bool = True, platform_extra: str = "",
                  storage_class: str = "") -> None:
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "pipelines" / "hello.yaml").write_text(PIPELINE)
    if not (root / "models" / "tiny").exists():
        write_model(root, "tiny")
    sc = f", storage-class: {storage_class}" if storage_class else ""
    (root / "clara.yaml").write_text("\n".join([
        "apiVersion: claractl/v1", "kind: Project", "name: radiology-ai",
        f"target: {{type: kubernetes, kubernetes: {{namespace: {namespace}{sc}}}}}",
        "services:",
        f"  platform: {{api-port: 8765, workers: 2, database: sqlite{platform_extra}}}",
        "  dicom-adapter: {port: 11112, ae-title: CLARA}",
        "  triton: {enabled: false}",
        f"  render: {{enabled: {'true' if render else 'false'}, port: 8080}}",
        "models:", "  - {name: tiny, path: models/tiny}",
        "pipelines:", "  - {name: hello, file: pipelines/hello.yaml}",
        "ae-titles:", "  - {ae-title: HELLO, pipelines: [hello]}",
        "sources:", "  - {name: pacs-main, ae-title: PACS1, host: 10.0.0.5}",
        "destinations:", "  - {name: pacs-main, ae-title: PACS1, host: 10.0.0.6, port: 104}",
    ]) + "\n")


@pytest.fixture
def project(cluster, namespace, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, namespace)
    return root


def cli(project, *args):
    result = CliRunner().invoke(app, ["-C", str(project), *args], env={"CI": "true", "COLUMNS": "250"})
    return result.exit_code, result.output


def kubectl(cluster, namespace, *args) -> str:
    done = subprocess.run([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def platform(rest, namespace, token=None):
    """The platform API through the service proxy, as the target reaches it."""
    if token is None:
        secret = k8s.CoreV1Api(rest.api).read_namespaced_secret("clara-platform-api-token", namespace)
        token = base64.b64decode(secret.data["token"]).decode()
    return ProxiedPlatformClient(rest, namespace, 8765, token)


def test_plan_apply_converges_and_the_platform_is_reached_with_the_client_certificate(
        cluster, rest, api_client, namespace, project, monkeypatch):
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    assert "client-certificate-data" in kubeconfig["users"][0]["user"]      # fix 1: kind/kubeadm style
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    for address in ("service.platform/Deployment/clara-platform", "service.platform/ConfigMap/clara-platform",
                    "service.platform/Secret/clara-platform-api-token",
                    "service.dicom-adapter/Service/clara-dicom-adapter", "service.render/Service/clara-render",
                    "model.tiny", "pipeline.hello", "ae-title.HELLO", "source.pacs-main", "destination.pacs-main"):
        assert address in out, address
    assert "the platform is not deployed yet" in out

    code, out = cli(project, "apply", "--auto-approve")
    assert code == 0, out
    dep = k8s.AppsV1Api(api_client).read_namespaced_deployment("clara-platform", namespace)
    assert dep.metadata.labels["claractl.dev/project"] == "radiology-ai" and dep.status.available_replicas == 1
    # Fix 2: no token in the project — claractl generated one, the platform takes writes with it.
    with platform(rest, namespace) as api:
        assert [(p["name"], p["owner"]) for p in api.list_pipelines()] == [("hello", "radiology-ai")]
        assert [a["ae_title"] for a in api.list_ae_titles()] == ["HELLO"]
        model = api.get_model("tiny")
        assert model["owner"] == "radiology-ai" and model["digest"].startswith("sha256:")
        assert api.get_destination("pacs-main")["port"] == 104
    with platform(rest, namespace, token="not-the-token") as api:
        with pytest.raises(ApiError) as info:
            api.put_source("x", "X", "10.0.0.7")
        assert info.value.status == 401

    # A steady plan: one list per kind (and the platform's own API), never an object by name.
    calls = []
    original = Rest.call

    def counting(self, method, path, *args, **kw):
        calls.append((method, path))
        return original(self, method, path, *args, **kw)
    monkeypatch.setattr(Rest, "call", counting)
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 0, out
    assert "No changes" in out
    assert len(calls) == len(INVENTORY_KINDS) and all(m == "GET" for m, _p in calls)
    code, out = cli(project, "apply", "--auto-approve")           # a second apply changes nothing
    assert code == 0 and "No changes" in out


def test_drift_by_kubectl_is_named_and_a_conflict_until_forced(cluster, api_client, namespace, project):
    """Fixes 4 and 9: kubectl scale (manager "kubectl", subresource scale), a label with dots, and
    env added by `kubectl set env` all show in the plan with who did it; --force-conflicts takes
    them back and removes what kubectl added."""
    assert cli(project, "apply", "--auto-approve")[0] == 0
    kubectl(cluster, namespace, "scale", "deployment/clara-platform", "--replicas=2")
    kubectl(cluster, namespace, "label", "--overwrite", "deployment/clara-platform", "app.kubernetes.io/version=9")
    kubectl(cluster, namespace, "set", "env", "deployment/clara-platform", "DEBUG=1")

    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    assert "replicas: 2 → 1" in out
    assert 'metadata.labels["app.kubernetes.io/version"]: "9" → "0.1.0"' in out
    assert "- spec.template.spec.containers[name=platform].env[name=DEBUG]" in out
    assert "spec.replicas changed by 'kubectl'" in out
    assert "changed by 'kubectl-label'" in out
    assert "env[name=DEBUG] added by 'kubectl-set'" in out

    apps = k8s.AppsV1Api(api_client)
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 1
    assert "conflict" in out and "--force-conflicts" in out and "Traceback" not in out
    assert apps.read_namespaced_deployment("clara-platform", namespace).spec.replicas == 2   # not overwritten

    code, out = cli(project, "apply", "--auto-approve", "--force-conflicts")
    assert code == 0, out
    dep = apps.read_namespaced_deployment("clara-platform", namespace)
    assert dep.spec.replicas == 1 and dep.metadata.labels["app.kubernetes.io/version"] == "0.1.0"
    assert "DEBUG" not in {e.name for e in dep.spec.template.spec.containers[0].env}
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 0, out


def test_platform_json_changes_read_as_paths(project, namespace):
    assert cli(project, "apply", "--auto-approve", "--no-wait")[0] == 0
    text = (project / "clara.yaml").read_text().replace("workers: 2", "workers: 4")
    (project / "clara.yaml").write_text(text)
    code, out = cli(project, "plan")
    assert code == 0, out
    assert 'data["platform.json"].api.workers: 2 → 4' in out


def test_deleted_by_hand_recreated_unrendered_pruned_hand_made_kept_and_refused(api_client, namespace, project):
    assert cli(project, "apply", "--auto-approve")[0] == 0
    core = k8s.CoreV1Api(api_client)
    core.delete_namespaced_service("clara-render", namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "by-hand"}})
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2 and "+ service.render/Service/clara-render" in out and "by-hand" not in out
    assert cli(project, "apply", "--auto-approve")[0] == 0
    assert core.read_namespaced_service("clara-render", namespace).metadata.labels["claractl.dev/service"] == "render"

    write_project(project, namespace, render=False)
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 0, out
    assert "clara-render" not in {s.metadata.name for s in core.list_namespaced_service(namespace).items}
    assert core.read_namespaced_config_map("by-hand", namespace).metadata.name == "by-hand"

    # A Service of the same name made by hand is never taken over.
    core.create_namespaced_service(namespace, {"metadata": {"name": "clara-render"},
                                               "spec": {"ports": [{"port": 80}]}})
    write_project(project, namespace, render=True)
    code, out = cli(project, "plan")
    assert code == 1 and "service.render/Service/clara-render" in out and "made by hand" in out


def test_an_unready_deployment_names_the_pod_reason_and_stays_in_the_plan(project, namespace):
    """Fix 6: --timeout, pod-level reasons, --no-wait, and a failed wait is not "done"."""
    write_project(project, namespace, platform_extra=", image: 'localhost/claractl-test/absent:1'")
    code, out = cli(project, "apply", "--auto-approve", "--timeout", "8s")
    assert code == 1
    assert "Deployment/clara-platform not ready after 8s" in out
    assert "ErrImagePull" in out or "ImagePullBackOff" in out
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    assert "~ service.platform/Deployment/clara-platform (not ready: 0/1 replicas available" in out
    # --no-wait: the Deployment is applied at once; the platform's own objects still need its API.
    code, out = cli(project, "apply", "--auto-approve", "--no-wait", "--timeout", "5s")
    assert code == 1
    assert "service.platform/Deployment/clara-platform: update done" in out
    assert "the platform API did not answer through the service proxy within 5s: 503 ServiceUnavailable: " \
           "no endpoints available for service" in out


def test_proxy_errors_name_status_and_message(cluster, rest, namespace, project, tmp_path):
    """Fix 5: what the API server answers itself — no such service, no endpoints, RBAC."""
    with platform(rest, namespace, token="") as api:
        with pytest.raises(ApiError) as info:
            api.list_pipelines()
    assert info.value.status == 404
    assert info.value.detail.startswith('404 NotFound: services "clara-platform" not found')

    write_project(project, namespace, platform_extra=", image: 'localhost/claractl-test/absent:1'")
    assert cli(project, "apply", "--auto-approve", "--no-wait", "--only", "service")[0] == 0
    with platform(rest, namespace) as api:
        with pytest.raises(ApiError) as info:
            api.list_pipelines()
    assert info.value.status == 503 and "no endpoints available for service" in info.value.detail
    code, out = cli(project, "plan")
    assert code == 0 and "the platform API is not reachable through the service proxy" in out
    assert "503 ServiceUnavailable" in out and "None" not in out

    core = k8s.CoreV1Api(rest.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token("nobody", namespace, {"spec": {"expirationSeconds": 600}}).status.token
    nobody = Rest(load_api_client(kubeconfig=str(kubeconfig_with_token(cluster, tmp_path, token))))
    with platform(nobody, namespace, token="x") as api:
        with pytest.raises(ApiError) as info:
            api.list_pipelines()
    assert info.value.status == 403 and "403 Forbidden" in info.value.detail
    assert f'User "system:serviceaccount:{namespace}:nobody" cannot get resource "services' in info.value.detail


def test_an_immutable_field_plans_a_replace_with_its_reason(project, namespace):
    """Fix 12: a PVC's storage class cannot change in place; the plan says replace, and why."""
    assert cli(project, "apply", "--auto-approve", "--no-wait")[0] == 0
    write_project(project, namespace, storage_class="fast")
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    assert ("-/+ service.platform/PersistentVolumeClaim/clara-platform-data (must be replaced: a "
            "PersistentVolumeClaim's storage class cannot change (its data is lost): .spec.storageClassName)") in out


def test_destroy_waits_for_a_claim_in_use_and_the_next_plan_recreates_it(api_client, namespace, project):
    """Fix 8: a PVC held by kubernetes.io/pvc-protection is not "done" and counts as absent."""
    assert cli(project, "apply", "--auto-approve")[0] == 0
    core = k8s.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, {"metadata": {"name": "uses-the-claim"}, "spec": {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sleep", "600"],
                        "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "clara-platform-data"}}]}})
    code, out = cli(project, "destroy", "--auto-approve", "--timeout", "5s")
    assert code == 1, out
    assert "Destroy failed" in out
    assert "PersistentVolumeClaim/clara-platform-data still present after 5s: being deleted, held by " \
           "finalizer kubernetes.io/pvc-protection (a pod still uses the claim" in out
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    assert ("~ service.platform/PersistentVolumeClaim/clara-platform-data (being deleted, held by finalizer "
            "kubernetes.io/pvc-protection; apply waits until it is gone, then creates it again)") in out
    # destroy again: it waits for the claim, which goes once its last pod does.
    import threading
    threading.Timer(3, core.delete_namespaced_pod, ("uses-the-claim", namespace),
                    {"grace_period_seconds": 0}).start()
    code, out = cli(project, "destroy", "--auto-approve")
    assert code == 0, out
    assert "Destroy complete: 1 objects destroyed" in out
    from claractl.kube.inventory import read_inventory
    assert read_inventory(Rest(api_client), namespace, "radiology-ai") == []
    assert cli(project, "plan", "--detailed-exitcode")[0] == 2     # everything to create again


def test_lock_held_by_another_run_is_a_clear_error_and_force_unlock_releases_it(rest, api_client, namespace, project):
    assert LeaseLock(rest, namespace, "radiology-ai", holder="alice@ci/1f2e").try_acquire()
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 1
    assert "alice@ci/1f2e" in out and "force-unlock" in out and "Traceback" not in out
    assert k8s.AppsV1Api(api_client).list_namespaced_deployment(namespace).items == []     # nothing applied
    code, out = cli(project, "force-unlock", "alice@ci/1f2e")
    assert code == 0, out
    assert cli(project, "apply", "--auto-approve", "--no-wait")[0] == 0
    assert k8s.CoordinationV1Api(api_client).list_namespaced_lease(namespace).items == []   # released


def test_the_lease_is_renewed_while_an_apply_holds_it(rest, api_client, namespace, project, monkeypatch):
    from claractl.kube.errors import LockHeld as LeaseHeld
    from claractl.project import load_project
    from claractl.targets import get_target
    from claractl.targets.kubernetes import target as target_module
    monkeypatch.setattr(target_module, "LEASE_SECONDS", 1)
    target = get_target(load_project(project / "clara.yaml"))
    info = target.acquire_lock("bob@build pid 42")
    assert info.lock_id.startswith("bob@build/pid-42/")
    leases = k8s.CoordinationV1Api(api_client)
    first = leases.read_namespaced_lease("claractl-radiology-ai", namespace).spec.renew_time
    time.sleep(1.6)                                    # longer than the lease: only renewal keeps it
    lease = leases.read_namespaced_lease("claractl-radiology-ai", namespace)
    assert lease.spec.renew_time > first and lease.spec.holder_identity == info.lock_id
    with pytest.raises(LeaseHeld):
        LeaseLock(rest, namespace, "radiology-ai", holder="other").try_acquire()
    target.release_lock(info)
    assert leases.list_namespaced_lease(namespace).items == []


def test_saved_plan_applies_exactly_and_never_holds_secret_values(api_client, namespace, project, monkeypatch):
    write_project(project, namespace, platform_extra=', api-token: "${env:CLARA_TOKEN}"')
    monkeypatch.setenv("CLARA_TOKEN", "tok-very-secret-123")
    code, out = cli(project, "plan", "--out", str(project / "plan.json"), "-o", "json")
    assert code == 0, out
    saved = (project / "plan.json").read_text()
    assert "service.platform/Secret/clara-platform-api-token" in saved
    for leak in ("tok-very-secret-123", base64.b64encode(b"tok-very-secret-123").decode()):
        assert leak not in saved and leak not in out
    code, out = cli(project, "apply", str(project / "plan.json"))
    assert code == 0, out
    secret = k8s.CoreV1Api(api_client).read_namespaced_secret("clara-platform-api-token", namespace)
    assert base64.b64decode(secret.data["token"]).decode() == "tok-very-secret-123"
    assert cli(project, "plan", "--detailed-exitcode")[0] == 0


def test_force_conflicts_is_refused_on_the_local_target(tmp_path):
    (tmp_path / "clara.yaml").write_text("apiVersion: claractl/v1\nkind: Project\nname: p\n"
                                         "target: {type: local}\nservices: {platform: {api-port: 18999}}\n")
    code, out = cli(tmp_path, "apply", "--auto-approve", "--force-conflicts")
    assert code == 1 and "--force-conflicts applies to the kubernetes target" in out


def test_without_helm_the_kubernetes_target_says_how_to_get_it(cluster, namespace, tmp_path):
    """Fix 7: a plain `pip install` (no helm extra, no helm binary) is one clear line, not a traceback."""
    write_project(tmp_path, namespace)
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "helm_python.py").write_text("raise ImportError('helm-python-sdk is not installed')\n")
    env = {**os.environ, "CLARA_HELM": "sdk", "PYTHONPATH": str(blocker), "KUBECONFIG": str(cluster.kubeconfig)}
    for command in (["plan"], ["apply", "--auto-approve"], ["destroy", "--auto-approve"]):
        done = subprocess.run([sys.executable, "-m", "claractl", "-C", str(tmp_path), *command],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "Helm is needed to render charts: install the `helm` binary or `pip install 'claractl[helm]'`" \
            in done.stderr


def test_a_missing_namespace_is_created_owned_and_removed_by_destroy(cluster, api_client, tmp_path, monkeypatch):
    """`target.kubernetes.namespace` and nothing else: apply makes the namespace (labelled as the
    project's), destroy removes it last; a namespace someone else made is never touched (the
    other tests run in such namespaces)."""
    import uuid
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    namespace = f"ct-made-{uuid.uuid4().hex[:8]}"
    root = tmp_path / "project"
    root.mkdir()
    write_project(root, namespace)
    core = k8s.CoreV1Api(api_client)
    try:
        code, out = cli(root, "plan")
        assert code == 0 and f"+ service.platform/Namespace/{namespace}" in out, out
        code, out = cli(root, "apply", "--auto-approve")
        assert code == 0, out
        labels = core.read_namespace(namespace).metadata.labels
        assert labels["claractl.dev/project"] == "radiology-ai"
        assert cli(root, "plan", "--detailed-exitcode")[0] == 0
        code, out = cli(root, "destroy", "--auto-approve")
        assert code == 0 and "Destroy complete" in out, out
        assert namespace not in {n.metadata.name for n in core.list_namespace().items}
    finally:
        cluster.delete_namespace(namespace)
