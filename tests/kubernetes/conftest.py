"""Fixtures for the kubernetes target: the real test cluster (a fresh namespace per test), the API
server stand-in (only for faults a real server cannot be made to produce), hand-built projects."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client as k8s
import pytest

from claractl.kube.client import KINDS, Rest, load_api_client
from claractl.kube.errors import KubeError
from claractl.project.model import Project, Secret, Target
from cluster import TEST_LABEL, Cluster, find_cluster
from standin import StandIn

NAMESPACE = "clara"


def kubernetes_platform(tmp_path: Path, rest: Rest, namespace: str = NAMESPACE):
    """(config, store, executor): a platform store whose engine runs operators as Jobs in NAMESPACE."""
    from claractl.platform.config import PlatformConfig
    from claractl.platform.engine.kubernetes_executor import KubernetesExecutor, KubernetesSettings
    from claractl.platform.store import Store

    config = PlatformConfig(state_dir=str(tmp_path))
    config.engine.executor = "kubernetes"
    config.inference.enabled = False
    store = Store(config.database_url)
    store.create_all()
    settings = KubernetesSettings(namespace=namespace, data_claim="clara-platform-data",
                                  operator_image="claractl:test", data_root=tmp_path)
    return config, store, KubernetesExecutor(settings, rest)


# ---- the real cluster ----

@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return find_cluster()


@pytest.fixture
def namespace(cluster):
    """A namespace of its own for each test, deleted (in the background) afterwards."""
    name = cluster.create_namespace()
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def payload_volume(cluster, namespace, tmp_path):
    """PVC `clara-platform-data` in the test's namespace, bound to a folder of this machine
    (hostPath PV): the test plays the platform and writes payloads that operator pods read and
    write. Needs a node that shares this machine's filesystem (the test cluster; k3s; minikube
    --driver=none), as a platform pod and its operators share one volume."""
    import time
    root = tmp_path / "data"
    root.mkdir()
    root.chmod(0o777)
    rest = cluster.rest()
    pv = f"{namespace}-data"
    rest.call("POST", KINDS["PersistentVolume"].collection(None), f"create PersistentVolume {pv}", body={
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv, "labels": {TEST_LABEL: "true"}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                 "hostPath": {"path": str(root), "type": "Directory"},
                 "claimRef": {"namespace": namespace, "name": "clara-platform-data"}}})
    rest.call("POST", KINDS["PersistentVolumeClaim"].collection(namespace), "create PVC clara-platform-data", body={
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "clara-platform-data"},
        "spec": {"storageClassName": "", "volumeName": pv, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}})
    deadline = time.monotonic() + 30
    while (rest.get(KINDS["PersistentVolumeClaim"], namespace, "clara-platform-data") or {}).get(
            "status", {}).get("phase") != "Bound":
        assert time.monotonic() < deadline, "the test PVC did not bind to its hostPath PV"
        time.sleep(0.2)
    yield root
    try:
        rest.call("DELETE", f"{KINDS['PersistentVolume'].collection(None)}/{pv}", f"delete PersistentVolume {pv}")
    except KubeError:
        pass


@pytest.fixture
def api_client(cluster) -> k8s.ApiClient:
    return load_api_client(kubeconfig=str(cluster.kubeconfig))


@pytest.fixture
def rest(api_client) -> Rest:
    return Rest(api_client, timeout=30)


# ---- the stand-in ----

@pytest.fixture
def standin():
    with StandIn() as server:
        server.create_namespace(NAMESPACE)
        yield server


def client_for(url: str, token: str | None = None) -> k8s.ApiClient:
    cfg = k8s.Configuration()
    cfg.host = url
    cfg.retries = 0
    if token:
        cfg.api_key = {"authorization": token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    return k8s.ApiClient(cfg)


@pytest.fixture
def standin_api_client(standin):
    return client_for(standin.url)


@pytest.fixture
def standin_rest(standin_api_client):
    return Rest(standin_api_client, timeout=10)


def make_project(services: dict | None = None, name: str = "radiology-ai", namespace: str = NAMESPACE,
                 storage_class: str = "") -> Project:
    """A Project as load_project returns it, built by hand (services in the file's kebab-case)."""
    return Project(
        name=name, path=Path("/projects/radiology-ai/clara.yaml"),
        target=Target(type="kubernetes", kubernetes={"context": "", "namespace": namespace,
                                                     "storage-class": storage_class}),
        services=services if services is not None else blueprint_services(),
    )


def blueprint_services() -> dict:
    """services as in DESIGN §2 / the ct-segmentation blueprint."""
    return {
        "platform": {"api-port": 8765, "workers": 2, "database": "sqlite"},
        "dicom-adapter": {"port": 11112, "ae-title": "CLARA", "max-associations": 25,
                          "reject-unknown-sources": True, "storage": {"watermark-percent": 85}},
        "triton": {"enabled": True, "image": "nvcr.io/nvidia/tritonserver:24.08-py3", "gpus": 1},
        "render": {"enabled": True, "port": 8080},
    }


@pytest.fixture
def project(namespace):
    """The blueprint's services in this test's namespace on the real cluster."""
    return make_project(namespace=namespace)


__all__ = ["NAMESPACE", "Secret", "blueprint_services", "client_for", "kubernetes_platform", "make_project"]
