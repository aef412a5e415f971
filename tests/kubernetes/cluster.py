"""The real Kubernetes cluster the kubernetes tests run against.

Which cluster: `CLARA_TEST_KUBECONFIG` (scripts/test-cluster.sh sets it to the single-node cluster
of ../shared/kube; bring your own kind/k3s/minikube by pointing it at that kubeconfig). Never the
user's own KUBECONFIG: tests create and delete namespaces.

Without a reachable cluster the tests say clearly that they did not run; in CI (`CI=true`) that
is a failure, never a silent pass.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from claractl.kube.client import KINDS, Rest, load_api_client
from claractl.kube.errors import KubeError

# A busybox image scripts/test-cluster.sh loads: a shell and coreutils for Jobs and pods in tests.
BUSYBOX = "localhost/claractl-test/busybox:1"
# The pause image ../shared/kube/up.sh imports (the kubelet's sandbox image): a container that runs forever.
PAUSE = "localhost/pause:3.10"
TEST_LABEL = "claractl.dev/test"


def not_run(reason: str) -> None:
    """Fail in CI, skip (saying why) elsewhere: the cluster tests never pass by not running."""
    message = f"kubernetes tests did not run: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Cluster:
    kubeconfig: Path

    def rest(self, timeout: float = 30.0) -> Rest:
        return Rest(load_api_client(kubeconfig=str(self.kubeconfig)), timeout=timeout)

    def create_namespace(self, prefix: str = "ct") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.rest().call("POST", KINDS["Namespace"].collection(None), f"create namespace {name}",
                         body={"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": name, "labels": {TEST_LABEL: "true"}}})
        return name

    def delete_namespace(self, name: str) -> None:
        try:
            self.rest().call("DELETE", f"{KINDS['Namespace'].collection(None)}/{name}", f"delete namespace {name}",
                             body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
        except KubeError:
            pass


def find_cluster() -> Cluster:
    path = os.environ.get("CLARA_TEST_KUBECONFIG")
    if not path:
        not_run("CLARA_TEST_KUBECONFIG is not set (scripts/test.sh starts the test cluster and sets it; "
                "or point it at the kubeconfig of a kind/k3s/minikube cluster you brought)")
    cluster = Cluster(Path(path))
    if not cluster.kubeconfig.is_file():
        not_run(f"CLARA_TEST_KUBECONFIG={path} does not exist")
    try:
        cluster.rest(timeout=5).call("GET", "/version", "read the server version")
    except KubeError as exc:
        not_run(f"the cluster of {path} does not answer: {exc}")
    return cluster
