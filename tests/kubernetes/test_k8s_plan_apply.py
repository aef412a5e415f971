"""plan / apply / prune / destroy on the kubernetes target, through the CLI and the plan engine,
against the API server stand-in (kubeconfig pointing at it) with a real platform API behind the
stand-in's service proxy for pipelines, models, AE titles, sources and destinations."""

from __future__ import annotations

import kubernetes.client as k8s
import pytest
import yaml
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.platform.client import PlatformClient
from claractl.targets.kubernetes import LeaseLock, Rest
from conftest import NAMESPACE, client_for
from test_k8s_platform_proxy import platform_api  # noqa: F401  (fixture: the real platform API app)
from tests.plan.projects import write_model

TOKEN = "cluster-token"
PIPELINE = """api-version: 0.6.0
name: hello
operators:
- name: echo
  container: {image: claractl/echo, command: [python, -c, "print(1)"]}
  input: [{path: /input}]
  output: [{path: /output}]
"""


def write_project(root, render: bool = True, replicas_note: str = "") -> None:
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "pipelines" / "hello.yaml").write_text(PIPELINE)
    if not (root / "models" / "tiny").exists():
        write_model(root, "tiny")
    (root / "clara.yaml").write_text("\n".join([
        "apiVersion: claractl/v1", "kind: Project", "name: radiology-ai",
        f"target: {{type: kubernetes, kubernetes: {{namespace: {NAMESPACE}}}}}",
        "services:",
        "  platform: {api-port: 8765, workers: 2, database: sqlite}",
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
def cluster(standin, platform_api, tmp_path, monkeypatch):  # noqa: F811
    """The stand-in with auth, a kubeconfig for it, the platform API behind its service proxy."""
    standin.token = TOKEN
    standin.auto_ready = True
    standin.register_proxy(NAMESPACE, "clara-platform", "8765", platform_api)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": standin.url}}],
        "users": [{"name": "ci", "user": {"token": TOKEN}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "ci"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("CLARA_K8S_WAIT_TIMEOUT", "5")
    project = tmp_path / "project"
    project.mkdir()
    write_project(project)
    return standin, project, PlatformClient(platform_api)


def cli(project, *args):
    result = CliRunner().invoke(app, ["-C", str(project), *args], env={"CI": "true"})
    return result.exit_code, result.output


def live(standin):
    api_client = client_for(standin.url, TOKEN)
    return k8s.AppsV1Api(api_client), k8s.CoreV1Api(api_client)


def test_plan_apply_converges_and_plan_shows_no_changes(cluster):
    standin, project, platform = cluster
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    for address in ("service.platform/Deployment/clara-platform", "service.platform/ConfigMap/",
                    "service.dicom-adapter/Service/clara-dicom-adapter", "service.render/Service/clara-render",
                    "model.tiny", "pipeline.hello", "ae-title.HELLO", "source.pacs-main", "destination.pacs-main"):
        assert address in out, address
    assert "the platform is not deployed yet" in out

    code, out = cli(project, "apply", "--auto-approve")
    assert code == 0, out
    apps, core = live(standin)
    dep = apps.read_namespaced_deployment("clara-platform", NAMESPACE)
    assert dep.metadata.labels["claractl.dev/project"] == "radiology-ai"
    assert {m.manager for m in dep.metadata.managed_fields} >= {"claractl"}
    # Platform-level objects went through the service proxy into the real platform API.
    assert [(p["name"], p["owner"]) for p in platform.list_pipelines()] == [("hello", "radiology-ai")]
    assert [a["ae_title"] for a in platform.list_ae_titles()] == ["HELLO"]
    model = platform.get_model("tiny")              # uploaded through the proxy; no Triton: not loaded
    assert model["owner"] == "radiology-ai" and model["digest"].startswith("sha256:")
    assert platform.get_destination("pacs-main")["port"] == 104
    assert any("/services/clara-platform:8765/proxy/api/v1/pipelines" in p for _m, p in standin.requests)

    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 0, out
    assert "No changes" in out


def test_drift_by_another_manager_is_a_conflict_until_forced(cluster):
    standin, project, _platform = cluster
    assert cli(project, "apply", "--auto-approve")[0] == 0
    apps, _core = live(standin)
    apps.patch_namespaced_deployment("clara-platform", NAMESPACE, {"spec": {"replicas": 3}},
                                     field_manager="kubectl-scale")

    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2, out
    assert "service.platform/Deployment/clara-platform (.spec.replicas changed by 'kubectl-scale'" in out
    assert "replicas: 3 → 1" in out

    code, out = cli(project, "apply", "--auto-approve")
    assert code == 1
    assert "conflict" in out and "kubectl-scale" in out and "--force-conflicts" in out
    assert apps.read_namespaced_deployment("clara-platform", NAMESPACE).spec.replicas == 3   # not overwritten

    code, out = cli(project, "apply", "--auto-approve", "--force-conflicts")
    assert code == 0, out
    dep = apps.read_namespaced_deployment("clara-platform", NAMESPACE)
    assert dep.spec.replicas == 1
    owners = {m.manager for m in dep.metadata.managed_fields if "f:replicas" in str(m.fields_v1)}
    assert owners == {"claractl"}
    assert cli(project, "plan", "--detailed-exitcode")[0] == 0


def test_an_object_deleted_by_hand_is_recreated(cluster):
    standin, project, _platform = cluster
    assert cli(project, "apply", "--auto-approve")[0] == 0
    _apps, core = live(standin)
    core.delete_namespaced_service("clara-render", NAMESPACE)
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2 and "service.render/Service/clara-render" in out
    assert cli(project, "apply", "--auto-approve")[0] == 0
    assert core.read_namespaced_service("clara-render", NAMESPACE).metadata.labels["claractl.dev/service"] == "render"


def test_a_service_no_longer_rendered_is_pruned_and_hand_made_objects_stay(cluster):
    standin, project, _platform = cluster
    assert cli(project, "apply", "--auto-approve")[0] == 0
    _apps, core = live(standin)
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "by-hand"}})
    write_project(project, render=False)
    code, out = cli(project, "plan", "--detailed-exitcode")
    assert code == 2
    assert "service.render/Service/clara-render" in out and "by-hand" not in out
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 0, out
    names = {s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items}
    assert "clara-render" not in names and "clara-platform" in names
    assert core.read_namespaced_config_map("by-hand", NAMESPACE).metadata.name == "by-hand"


def test_a_same_named_object_made_by_hand_is_refused_not_taken_over(cluster):
    standin, project, _platform = cluster
    _apps, core = live(standin)
    core.create_namespaced_service(NAMESPACE, {"metadata": {"name": "clara-render"},
                                               "spec": {"ports": [{"port": 80}]}})
    code, out = cli(project, "plan")
    assert code == 1
    assert "service.render/Service/clara-render" in out and "made by hand" in out


def test_destroy_removes_what_the_project_owns(cluster):
    standin, project, platform = cluster
    assert cli(project, "apply", "--auto-approve")[0] == 0
    _apps, core = live(standin)
    core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "by-hand"}})
    platform.put_source("someone-elses", "OTHER", "10.9.9.9")   # not owned by the project
    code, out = cli(project, "destroy", "--auto-approve")
    assert code == 0, out
    rest = Rest(client_for(standin.url, TOKEN))
    from claractl.targets.kubernetes import read_inventory
    assert read_inventory(rest, NAMESPACE, "radiology-ai") == []
    # The platform objects went before the platform itself (deletes run in reverse order).
    assert platform.list_pipelines() == [] and platform.list_ae_titles() == [] and platform.list_models() == []
    assert [s["name"] for s in platform.list_sources()] == ["someone-elses"]
    assert core.read_namespaced_config_map("by-hand", NAMESPACE)
    assert cli(project, "plan", "--detailed-exitcode")[0] == 2     # everything to create again


def test_lock_held_by_another_run_is_a_clear_error_and_force_unlock_releases_it(cluster):
    standin, project, _platform = cluster
    rest = Rest(client_for(standin.url, TOKEN))
    assert LeaseLock(rest, NAMESPACE, "radiology-ai", holder="alice@ci/1f2e").try_acquire()
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 1
    assert "alice@ci/1f2e" in out and "force-unlock" in out
    assert "Traceback" not in out
    assert not any(m == "PATCH" for m, _p in standin.requests)     # nothing applied
    code, out = cli(project, "force-unlock", "alice@ci/1f2e")
    assert code == 0, out
    assert cli(project, "apply", "--auto-approve")[0] == 0
    # The run's own lease is gone after the apply.
    assert k8s.CoordinationV1Api(client_for(standin.url, TOKEN)).list_namespaced_lease(NAMESPACE).items == []


def test_a_deployment_that_never_becomes_available_fails_with_the_reason(cluster, monkeypatch):
    standin, project, _platform = cluster
    standin.auto_ready = False
    monkeypatch.setenv("CLARA_K8S_WAIT_TIMEOUT", "1")
    code, out = cli(project, "apply", "--auto-approve")
    assert code == 1
    assert "Deployment/clara-platform not ready after 1s" in out
    assert "pipeline.hello" in out      # reported as not done: nothing ran after the failure


def test_force_conflicts_is_refused_on_the_local_target(tmp_path):
    (tmp_path / "clara.yaml").write_text("apiVersion: claractl/v1\nkind: Project\nname: p\n"
                                         "target: {type: local}\nservices: {platform: {api-port: 18999}}\n")
    code, out = cli(tmp_path, "apply", "--auto-approve", "--force-conflicts")
    assert code == 1 and "--force-conflicts applies to the kubernetes target" in out


def test_a_steady_plan_reads_one_list_per_kind_and_no_object_by_name(cluster):
    standin, project, _platform = cluster
    assert cli(project, "apply", "--auto-approve")[0] == 0
    before = len(standin.requests)
    assert cli(project, "plan", "--detailed-exitcode")[0] == 0
    kube = [(m, p) for m, p in standin.requests[before:] if "/proxy/" not in p]
    from claractl.kube.client import INVENTORY_KINDS
    assert len(kube) == len(INVENTORY_KINDS) and all(m == "GET" for m, _p in kube)
    assert not any(p.rsplit("/", 1)[-1].startswith("clara-") for _m, p in kube)     # lists, not GETs by name


def test_the_lease_is_renewed_while_an_apply_holds_it(cluster, monkeypatch):
    standin, project, _platform = cluster
    from claractl.project import load_project
    from claractl.targets import get_target
    from claractl.targets.kubernetes import LockHeld as LeaseHeld
    from claractl.targets.kubernetes import target as target_module
    monkeypatch.setattr(target_module, "LEASE_SECONDS", 1)
    target = get_target(load_project(project / "clara.yaml"))
    info = target.acquire_lock("bob@build pid 42")
    assert info.lock_id.startswith("bob@build/pid-42/")
    leases = k8s.CoordinationV1Api(client_for(standin.url, TOKEN))
    first = leases.read_namespaced_lease("claractl-radiology-ai", NAMESPACE).spec.renew_time
    import time
    time.sleep(1.6)                                    # longer than the lease: only renewal keeps it
    lease = leases.read_namespaced_lease("claractl-radiology-ai", NAMESPACE)
    assert lease.spec.renew_time > first and lease.spec.holder_identity == info.lock_id
    rest = Rest(client_for(standin.url, TOKEN))
    with pytest.raises(LeaseHeld):
        LeaseLock(rest, NAMESPACE, "radiology-ai", holder="other").try_acquire()
    target.release_lock(info)
    assert leases.list_namespaced_lease(NAMESPACE).items == []


def test_saved_plan_applies_exactly_and_never_holds_secret_values(cluster, monkeypatch):
    import base64
    standin, project, _platform = cluster
    text = (project / "clara.yaml").read_text().replace(
        "platform: {api-port: 8765, workers: 2, database: sqlite}",
        "platform: {api-port: 8765, workers: 2, database: sqlite, api-token: \"${env:CLARA_TOKEN}\"}")
    (project / "clara.yaml").write_text(text)
    monkeypatch.setenv("CLARA_TOKEN", "tok-very-secret-123")
    code, out = cli(project, "plan", "--out", str(project / "plan.json"), "-o", "json")
    assert code == 0, out
    saved = (project / "plan.json").read_text()
    assert "service.platform/Secret/clara-platform-api-token" in saved
    for leak in ("tok-very-secret-123", base64.b64encode(b"tok-very-secret-123").decode()):
        assert leak not in saved and leak not in out
    code, out = cli(project, "apply", str(project / "plan.json"))
    assert code == 0, out
    _apps, core = live(standin)
    secret = core.read_namespaced_secret("clara-platform-api-token", NAMESPACE)
    assert base64.b64decode(secret.data["token"]).decode() == "tok-very-secret-123"
    assert cli(project, "plan", "--detailed-exitcode")[0] == 0
