"""PDL services on Kubernetes: the Deployment and Service the kubernetes launcher applies, checked
against the official schemas (strict) and for what operators are given. The run on a real cluster
waits for the kubernetes target's cluster flow (docs/clara-api.md, "Open")."""

from __future__ import annotations


import kubernetes_validate
import pytest

from claractl.platform.engine.kubernetes_executor import KubernetesSettings
from claractl.platform.engine.kubernetes_services import KubernetesService, KubernetesServiceLauncher, object_name
from claractl.platform.pdl_services import declared

KUBE_VERSIONS = ("1.30.0", "1.33.0")
DECL = declared({
    "name": "model-server",
    "container": {"image": "registry.example/model-server", "tag": "2.1",
                  "command": ["serve", "--models=$(NVIDIA_CLARA_SERVICE_DATA_PATH)/models", "--cache=$(CACHE_DIR)"]},
    "requests": {"cpu": 2, "memory": 4096, "gpu": 1},
    "variables": {"LOG_LEVEL": "debug"},
    "connections": {"http": [{"name": "MODEL_SERVER_URI", "port": 9000, "path": "/v1"}],
                    "volume": [{"name": "CACHE_DIR", "path": "/cache"}]},
})


@pytest.fixture
def launcher(tmp_path):
    settings = KubernetesSettings(namespace="clara", data_claim="clara-data", operator_image="claractl/claractl:0.1",
                                  data_root=tmp_path)
    return KubernetesServiceLauncher(settings, rest=object())


def test_manifests_validate_and_carry_the_service(launcher, tmp_path):
    data_dir = tmp_path / "services" / "model-server-abc"
    deployment, service = launcher.manifests(DECL, "model-server-abc", data_dir, tmp_path)
    for obj in (deployment, service):
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    name = object_name("model-server-abc")
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == name and len(name) <= 63
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/model-server:2.1"
    assert container["command"] == ["serve", "--models=/clara/service-data/models", "--cache=/cache"]
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "LOG_LEVEL": "debug", "NVIDIA_CLARA_SERVICE_DATA_PATH": "/clara/service-data", "CACHE_DIR": "/cache"}
    assert {m["mountPath"]: (m["subPath"], m.get("readOnly", False)) for m in container["volumeMounts"]} == {
        "/clara/service-data": (".", True), "/cache": ("services/model-server-abc/CACHE_DIR", False)}
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"}
    assert service["spec"]["ports"] == [{"name": "http-0", "port": 9000, "targetPort": 9000, "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_operators_get_the_service_dns_name_and_the_volume_path(launcher, tmp_path):
    objects = launcher.manifests(DECL, "model-server-abc", tmp_path / "s", tmp_path)
    conns = KubernetesService(rest=None, decl=DECL, objects=objects).connections()
    name = objects[0]["metadata"]["name"]
    assert [(c.name, c.kind, c.value, c.path) for c in conns] == [
        ("MODEL_SERVER_URI", "http", f"{name}.clara.svc:9000/v1", ""), ("CACHE_DIR", "volume", "/cache", "/cache")]


def test_service_images_follow_the_operators_rules(launcher, tmp_path):
    """As for operators: an image runs as the pipeline names it; no image: the platform's image."""
    bundled = declared({"name": "helper", "container": {"image": "claractl/helper", "command": ["python", "-m", "x"]}})
    bare = declared({"name": "bare", "container": {"image": "", "command": ["python", "-m", "x"]}})
    (deployment,) = launcher.manifests(bundled, "helper-1", tmp_path / "h", tmp_path)   # no http: no Service
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "claractl/helper"
    (deployment,) = launcher.manifests(bare, "bare-1", tmp_path / "b", tmp_path)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "claractl/claractl:0.1"
