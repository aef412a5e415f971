"""Fixtures for the kubernetes target: the API server stand-in, clients, hand-built projects."""

from __future__ import annotations

from pathlib import Path

import kubernetes.client as k8s
import pytest

from claractl.project.model import Project, Secret, Target
from claractl.kube.client import Rest
from standin import StandIn

NAMESPACE = "clara"


def kubernetes_platform(tmp_path: Path, rest: Rest):
    """(config, store, executor): a platform store whose engine runs operators as Jobs in NAMESPACE."""
    from claractl.platform.config import PlatformConfig
    from claractl.platform.engine.kubernetes_executor import KubernetesExecutor, KubernetesSettings
    from claractl.platform.store import Store

    config = PlatformConfig(state_dir=str(tmp_path))
    config.engine.executor = "kubernetes"
    config.inference.enabled = False
    store = Store(config.database_url)
    store.create_all()
    settings = KubernetesSettings(namespace=NAMESPACE, data_claim="clara-platform-data",
                                  operator_image="claractl:test", data_root=tmp_path)
    return config, store, KubernetesExecutor(settings, rest)


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
def api_client(standin):
    return client_for(standin.url)


@pytest.fixture
def rest(api_client):
    return Rest(api_client, timeout=10)


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
def project():
    return make_project()


__all__ = ["NAMESPACE", "Secret", "blueprint_services", "client_for", "make_project"]
