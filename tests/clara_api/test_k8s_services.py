"""PDL services on Kubernetes: the Deployment and Service the kubernetes launcher applies, checked
against the official schemas (strict), and what operators are given (environment, and the
service's volume mounted in their Job). The run on the real cluster, through the platform's own
Role: tests/kubernetes/test_k8s_clara_api.py."""

from __future__ import annotations

import kubernetes_validate
import pytest

from claractl.platform.engine.executor import OperatorSpec
from claractl.platform.engine.kubernetes_executor import KubernetesSettings
from claractl.platform.engine.layout import operator_io
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


def test_operators_get_the_service_dns_name_and_its_volume_mounted(launcher, tmp_path):
    data_dir = tmp_path / "services" / "model-server-abc"
    objects = launcher.manifests(DECL, "model-server-abc", data_dir, tmp_path)
    conns = KubernetesService(rest=None, decl=DECL, objects=objects, data_dir=data_dir).connections()
    name = objects[0]["metadata"]["name"]
    assert [(c.name, c.kind, c.value, c.path) for c in conns] == [
        ("MODEL_SERVER_URI", "http", f"{name}.clara.svc:9000/v1", ""),
        ("CACHE_DIR", "volume", str(data_dir / "CACHE_DIR"), "/cache")]

    # The operator's Job: the variable holds the path where the service's directory is mounted.
    op = {"name": "ask", "container": {"image": "registry.example/ask", "command": ["ask"]},
          "output": [{"path": "/out"}]}
    payload = tmp_path / "payloads" / "p-1"
    spec = OperatorSpec(job_id="5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b", job_name="j", pipeline_name="p", operator=op,
                        payload=payload, io=operator_io(payload, {"operators": [op]}, op),
                        log_path=tmp_path / "ask.log", connections=conns)
    job = launcher.executor.manifest(spec)
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["MODEL_SERVER_URI"], env["CACHE_DIR"]) == (f"{name}.clara.svc:9000/v1", "/cache")
    assert {"name": "payload", "mountPath": "/cache", "subPath": "services/model-server-abc/CACHE_DIR"} \
        in container["volumeMounts"]


def test_service_images_follow_the_operators_rules(launcher, tmp_path):
    """As for operators: an image runs as the pipeline names it; no image: the platform's image."""
    bundled = declared({"name": "helper", "container": {"image": "claractl/helper", "command": ["python", "-m", "x"]}})
    bare = declared({"name": "bare", "container": {"image": "", "command": ["python", "-m", "x"]}})
    (deployment,) = launcher.manifests(bundled, "helper-1", tmp_path / "h", tmp_path)   # no http: no Service
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "claractl/helper"
    (deployment,) = launcher.manifests(bare, "bare-1", tmp_path / "b", tmp_path)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "claractl/claractl:0.1"
