"""Every chart renders with real Helm, lints clean, and validates against the official
Kubernetes schemas for two minor versions; the rendered objects carry what the issue asks."""

from __future__ import annotations

import base64
import json

import kubernetes_validate
import pytest

from claractl.targets.kubernetes import helm
from claractl.targets.kubernetes.manifests import desired_objects
from claractl.targets.kubernetes.values import RELEASE, charts_dir, values_for
from conftest import Secret, blueprint_services, make_project

KUBE_VERSIONS = ["1.30.0", "1.33.0"]
CHARTS = ["platform", "dicom-adapter", "triton", "render", "postgresql"]


def edge_services() -> list[tuple[str, dict]]:
    base = blueprint_services
    return [
        ("blueprint", base()),
        ("postgresql", {**base(), "platform": {"database": Secret("DB_URL", "postgresql://clara:s3cret@db:5432/clara"),
                                                "api-token": Secret("TOKEN", "t0ken-value")}}),
        ("nodeport", {**base(), "dicom-adapter": {"port": 11112, "service-type": "NodePort", "node-port": 30104}}),
        ("loadbalancer", {**base(), "dicom-adapter": {"port": 4242, "service-type": "LoadBalancer"}}),
        ("gpus0", {**base(), "triton": {"enabled": True, "gpus": 0}}),
        ("gpus2", {**base(), "triton": {"enabled": True, "gpus": 2}}),
        ("embedded", {**base(), "triton": {"enabled": True, "embedded": True, "http-port": 9000, "grpc-port": 9001}}),
        ("minimal", {"platform": {}, "dicom-adapter": {"enabled": False}, "triton": {"enabled": False},
                     "render": {"enabled": False}}),
        ("external-triton", {**base(), "triton": {"url": "triton.ml:8000"}}),
        ("high-availability", {**base(), "platform": {"high-availability": True, "database": "postgresql"}}),
    ]


def render(services: dict, reveal: bool = True):
    return [o.manifest for o in desired_objects(make_project(services, storage_class="fast"), reveal_secrets=reveal)]


def by_name(objects, kind, name):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, f"{kind}/{name} not rendered; have {[(o['kind'], o['metadata']['name']) for o in objects]}"
    return found[0]


@pytest.mark.parametrize("case,services", edge_services(), ids=[c for c, _ in edge_services()])
def test_rendered_manifests_validate_for_two_kubernetes_versions(case, services):
    objects = render(services)
    assert objects
    for obj in objects:
        for version in KUBE_VERSIONS:
            # strict: unknown fields are errors, so a typo in a template cannot pass
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("case,services", edge_services(), ids=[c for c, _ in edge_services()])
def test_every_object_is_labelled_named_and_namespaced(case, services):
    for obj in render(services):
        meta = obj["metadata"]
        labels = meta["labels"]
        assert meta["namespace"] == "clara"
        assert meta["name"].startswith("clara-")
        assert labels["claractl.dev/project"] == "radiology-ai"
        for key in ("name", "instance", "version", "managed-by"):
            assert labels[f"app.kubernetes.io/{key}"], key
        assert labels["app.kubernetes.io/managed-by"] == "claractl"


def test_blueprint_addresses_match_the_design_examples():
    objects = desired_objects(make_project())
    addresses = {o.address for o in objects}
    assert "service.triton/Deployment/clara-triton" in addresses
    assert "service.platform/Deployment/clara-platform" in addresses
    assert "service.dicom-adapter/Service/clara-dicom-adapter" in addresses
    assert {o.manifest["kind"] for o in objects if o.service == "platform"} == {
        "ConfigMap", "Deployment", "PersistentVolumeClaim", "Role", "RoleBinding", "Service", "ServiceAccount"}


def test_containers_run_non_root_read_only_with_no_capabilities_and_have_probes_and_requests():
    for obj in render(blueprint_services()):
        if obj["kind"] != "Deployment":
            continue
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
            assert c["readinessProbe"]["httpGet"]["path"] and c["livenessProbe"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= obj["spec"]["template"]["metadata"]["labels"].items()


def test_platform_rbac_is_namespaced_and_covers_jobs_pods_and_logs():
    objects = render(blueprint_services())
    assert not [o for o in objects if o["kind"].startswith("Cluster")]
    role = by_name(objects, "Role", "clara-platform")
    rules = {(r["apiGroups"][0], res): set(r["verbs"]) for r in role["rules"] for res in r["resources"]}
    assert {"create", "delete", "get", "list", "watch"} <= rules[("batch", "jobs")]
    assert {"get", "list"} <= rules[("", "pods")]
    assert "get" in rules[("", "pods/log")]
    binding = by_name(objects, "RoleBinding", "clara-platform")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "clara-platform", "namespace": "clara"}]
    deployment = by_name(objects, "Deployment", "clara-platform")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "clara-platform"


def test_sqlite_default_puts_state_on_a_pvc_with_the_storage_class():
    objects = render(blueprint_services())
    pvc = by_name(objects, "PersistentVolumeClaim", "clara-platform-data")
    assert pvc["spec"]["storageClassName"] == "fast"
    config = json.loads(by_name(objects, "ConfigMap", "clara-platform")["data"]["platform.json"])
    assert config["store"]["database"] == "sqlite" and config["state_dir"] == "/var/lib/clara"
    assert config["engine"]["executor"] == "kubernetes"
    assert config["inference"]["url"] == "http://clara-triton:8000"
    assert config["dicom"]["ae_title"] == "CLARA" and config["dicom"]["port"] == 11112
    mounts = {m["name"]: m["mountPath"] for m in
              by_name(objects, "Deployment", "clara-platform")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["data"] == "/var/lib/clara" and mounts["models"] == "/var/lib/clara/models"
    assert not [o for o in objects if o["kind"] == "Secret"]


def test_dicom_storage_settings_reach_the_platform_config():
    services = blueprint_services()
    services["dicom-adapter"]["storage"] = {"watermark-percent": 90, "reserve-mb": 2048, "spool-segment-mb": 16}
    config = json.loads(by_name(render(services), "ConfigMap", "clara-platform")["data"]["platform.json"])
    assert (config["dicom"]["watermark_percent"], config["dicom"]["reserve_mb"],
            config["dicom"]["spool_segment_mb"]) == (90, 2048, 16)


def test_engine_settings_reach_the_platform_config():
    services = blueprint_services()
    services["platform"].update({"job-timeout": 120, "payload-retention": 3600, "service-idle": 15})
    engine = json.loads(by_name(render(services), "ConfigMap", "clara-platform")["data"]["platform.json"])["engine"]
    assert (engine["job_timeout"], engine["payload_retention"], engine["service_idle"]) == (120, 3600, 15)


def test_postgresql_url_travels_in_a_secret_never_in_the_configmap():
    services = edge_services()[1][1]
    applied = render(services, reveal=True)
    secret = by_name(applied, "Secret", "clara-platform-database")
    assert base64.b64decode(secret["data"]["url"]).decode() == "postgresql://clara:s3cret@db:5432/clara"
    token = by_name(applied, "Secret", "clara-platform-api-token")
    assert base64.b64decode(token["data"]["token"]).decode() == "t0ken-value"
    env = {e["name"]: e for e in by_name(applied, "Deployment", "clara-platform")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLARA_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "clara-platform-database", "key": "url"}
    assert env["CLARA_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "clara-platform-api-token", "key": "token"}
    # Rendered for GitOps (not revealed): the same references, no Secret objects, no value anywhere.
    gitops = render(services, reveal=False)
    text = json.dumps(gitops)
    assert "s3cret" not in text and "t0ken-value" not in text
    assert not [o for o in gitops if o["kind"] == "Secret"]
    env = {e["name"]: e for e in by_name(gitops, "Deployment", "clara-platform")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLARA_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "clara-platform-database"
    assert "s3cret" not in by_name(applied, "ConfigMap", "clara-platform")["data"]["platform.json"]


def test_dicom_adapter_service_maps_104_to_the_scp_port_with_the_requested_type():
    svc = by_name(render(edge_services()[2][1]), "Service", "clara-dicom-adapter")
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [{"name": "dicom", "port": 104, "targetPort": 11112, "protocol": "TCP", "nodePort": 30104}]
    assert svc["spec"]["selector"] == {"app.kubernetes.io/name": "platform", "app.kubernetes.io/instance": RELEASE}
    lb = by_name(render(edge_services()[3][1]), "Service", "clara-dicom-adapter")
    assert lb["spec"]["type"] == "LoadBalancer" and lb["spec"]["ports"][0]["targetPort"] == 4242
    assert lb["spec"]["externalTrafficPolicy"] == "Local"
    cluster = by_name(render(blueprint_services()), "Service", "clara-dicom-adapter")
    assert cluster["spec"]["type"] == "ClusterIP" and "nodePort" not in cluster["spec"]["ports"][0]


def triton_container(services):
    deployment = by_name(render(services), "Deployment", "clara-triton")
    return deployment["spec"]["template"]["spec"]


def test_triton_runs_the_nvidia_image_with_explicit_model_control_and_gpu_limits():
    pod = triton_container(edge_services()[5][1])
    c = pod["containers"][0]
    assert c["image"] == "nvcr.io/nvidia/tritonserver:24.08-py3"
    assert c["command"] == ["tritonserver"]
    assert "--model-repository=/models" in c["args"] and "--model-control-mode=explicit" in c["args"]
    assert [p["containerPort"] for p in c["ports"]] == [8000, 8001, 8002]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "clara-triton-models"}} in pod["volumes"]
    no_gpu = triton_container(edge_services()[4][1])["containers"][0]
    assert "nvidia.com/gpu" not in no_gpu["resources"].get("limits", {})


def test_embedded_triton_runs_the_claractl_inference_service_on_the_same_ports():
    c = triton_container(edge_services()[6][1])["containers"][0]
    assert c["image"] == "claractl/platform:0.1.0"          # what scripts/build-images.sh builds
    assert c["command"] == ["python", "-m", "claractl.platform.inference", "--repository", "/models",
                            "--http-port", "9000", "--grpc-port", "9001"]
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {})
    config = json.loads(by_name(render(edge_services()[6][1]), "ConfigMap", "clara-platform")["data"]["platform.json"])
    assert config["inference"]["url"] == "http://clara-triton:9000"


def test_disabled_and_external_services_render_nothing_for_them():
    minimal = desired_objects(make_project(edge_services()[7][1]))
    assert {o.service for o in minimal} == {"platform"}
    config = json.loads(by_name([o.manifest for o in minimal], "ConfigMap", "clara-platform")["data"]["platform.json"])
    assert config["dicom"]["enabled"] is False and config["inference"]["enabled"] is True
    external = render(edge_services()[8][1])
    assert not [o for o in external if o["metadata"]["labels"]["claractl.dev/service"] == "triton"]
    config = json.loads(by_name(external, "ConfigMap", "clara-platform")["data"]["platform.json"])
    assert config["inference"]["url"] == "http://triton.ml:8000"


@pytest.mark.parametrize("chart", CHARTS + ["clara"])
def test_helm_lint_strict_reports_no_errors_or_warnings(chart):
    values = values_for(make_project()).get(chart, {})
    for version in KUBE_VERSIONS:
        problems = [m for m in helm.lint_chart(charts_dir() / chart, values, kube_version=f"v{version}")
                    if m.severity in ("warning", "error")]
        assert problems == []


def test_umbrella_chart_renders_all_services_offline():
    objects = helm.render_chart(charts_dir() / "clara", RELEASE, "clara", {"global": {"project": "demo"}})
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "clara-platform"), ("Deployment", "clara-triton"), ("Service", "clara-dicom-adapter"),
            ("Service", "clara-render")} <= names
    assert all(o["metadata"]["labels"]["claractl.dev/project"] == "demo" for o in objects)
    without = helm.render_chart(charts_dir() / "clara", RELEASE, "clara", {"triton": {"enabled": False}})
    assert not [o for o in without if o["metadata"]["name"].startswith("clara-triton")]


@pytest.mark.parametrize("values,where", [
    ({"api": {"port": 0}}, "/api/port"),
    ({"database": {"type": "external"}}, "/database"),
    ({"dicom": {"aeTitle": "THIS-AE-TITLE-IS-TOO-LONG"}}, "/dicom/aeTitle"),
    ({"unknownKey": 1}, "unknownKey"),
])
def test_values_schema_rejects_bad_values_naming_the_key(values, where):
    with pytest.raises(helm.HelmError) as info:
        helm.render_chart(charts_dir() / "platform", RELEASE, "clara", values)
    assert where in str(info.value) and "\n" not in str(info.value)


def test_triton_schema_rejects_negative_gpus_and_bad_service_type():
    with pytest.raises(helm.HelmError, match="gpus"):
        helm.render_chart(charts_dir() / "triton", RELEASE, "clara", {"gpus": -1})
    with pytest.raises(helm.HelmError, match="type"):
        helm.render_chart(charts_dir() / "dicom-adapter", RELEASE, "clara", {"service": {"type": "External"}})


def test_not_a_chart_is_a_clear_error(tmp_path):
    with pytest.raises(helm.HelmError, match="no Chart.yaml"):
        helm.render_chart(tmp_path, RELEASE, "clara", {})


def test_lint_reports_schema_errors_as_errors():
    problems = helm.lint_chart(charts_dir() / "triton", {"gpus": -1, "service": {"type": "Nope"}})
    errors = [m for m in problems if m.severity == "error"]
    assert errors and any("/gpus" in m.message for m in errors) and any("/service/type" in m.message for m in errors)


@pytest.mark.parametrize("case,services", edge_services(), ids=[c for c, _ in edge_services()])
def test_every_rendered_kind_is_read_back_by_the_inventory(case, services):
    # A kind missing from the inventory list would never show in a plan nor be pruned.
    from claractl.kube.client import INVENTORY_KINDS
    assert {o["kind"] for o in render(services)} <= set(INVENTORY_KINDS)


def test_platform_and_triton_share_the_model_volume_group():
    objects = render(blueprint_services())
    platform = by_name(objects, "Deployment", "clara-platform")["spec"]["template"]["spec"]
    triton = by_name(objects, "Deployment", "clara-triton")["spec"]["template"]["spec"]
    assert platform["securityContext"]["fsGroup"] == triton["securityContext"]["fsGroup"] == 10001
    claims = {v["persistentVolumeClaim"]["claimName"] for v in platform["volumes"] if "persistentVolumeClaim" in v}
    assert "clara-triton-models" in claims


def test_render_chart_ingress_validates_and_routes_to_the_service():
    objects = helm.render_chart(charts_dir() / "render", RELEASE, "clara", {
        "ingress": {"enabled": True, "className": "nginx", "host": "viewer.hospital.example",
                    "tls": {"secretName": "viewer-tls"}}})
    ingress = by_name(objects, "Ingress", "clara-render")
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(ingress, version, strict=True)
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "viewer.hospital.example"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "clara-render", "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"secretName": "viewer-tls", "hosts": ["viewer.hospital.example"]}]
