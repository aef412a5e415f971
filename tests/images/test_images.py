"""The container images scripts/build-images.sh builds, run on the real cluster.

Uses the OCI archives in CLARA_TEST_IMAGE_DIR (`scripts/build-images.sh --oci-dir DIR`, which
scripts/test-cluster.sh runs) and the cluster of CLARA_TEST_KUBECONFIG. On the shared test cluster
an archive containerd does not hold yet is loaded with ../shared/kube/load-image.sh; on a cluster
you brought, load them yourself. One pod per image, all at once, in a namespace of their own, as
the charts and the Job executor run them (non-root, read-only root file system, no capabilities,
imagePullPolicy Never): the platform image answers `claractl version`, serves /health/live,
stores an uploaded model and answers an inference; each operator image runs its operator's
--help and imports its modules and libraries. Python must be the base image's own (Debian 12's
3.11.2 on the local base). Missing archives or cluster: a failure under CI=true, a skip saying so
elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s

from claractl.kube.client import load_api_client
from tests.kubernetes.cluster import find_cluster, not_run

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
LOAD_IMAGE = Path(os.environ.get("CLARA_SHARED_KUBE", ROOT.parent / "shared" / "kube")) / "load-image.sh"
KUBE_STATE = Path(os.environ.get("CLARA_KUBE_DIR", Path(os.environ.get("TMPDIR", "/tmp")) / "claractl-kube"))
LOCAL_BASE = "localhost/claractl-base:"
POD_TIMEOUT = 240


@dataclass
class Image:
    name: str          # platform, dicom-reader, ...
    ref: str           # docker.io/claractl/<name>:<tag>
    dockerfile: Path
    archive: Path


def images_to_test(image_dir: Path) -> list[Image]:
    listing = subprocess.run([str(ROOT / "scripts/build-images.sh"), "--list"], capture_output=True,
                             text=True, check=True).stdout
    images = []
    for line in listing.splitlines():
        name, ref, dockerfile = line.split()
        images.append(Image(name, ref, ROOT / dockerfile, image_dir / f"claractl-{name}.oci.tar"))
    return images


def archive_config(archive: Path) -> tuple[str, str, dict]:
    """(reference, manifest digest, image config) of a one-image OCI archive."""
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> dict:
            return json.load(tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}"))
        [entry] = json.load(tar.extractfile("index.json"))["manifests"]
        manifest = blob(entry["digest"])
        names = entry.get("annotations") or {}
        # buildah/podman put the full name in ref.name; docker save puts only the tag there
        ref = names.get("io.containerd.image.name") or names.get("org.opencontainers.image.ref.name", "")
        return ref, entry["digest"], blob(manifest["config"]["digest"])


def libraries_of(dockerfile: Path) -> list[str]:
    """Import names of what the Dockerfile's `RUN pip install "dist[extras]>=..."` lines install."""
    names = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("RUN pip install "):
            for dist, extras in re.findall(r'"([A-Za-z0-9_.-]+)(?:\[([a-z0-9_,]+)\])?[<>=!~]', line):
                module = dist.lower().replace("-", "_")
                names += [f"{module}.{e}" for e in extras.split(",")] if extras else [module]
    return names


def load_into_shared_cluster(images: list[Image], kubeconfig: Path) -> None:
    """Load archives the shared cluster's containerd lacks. Same stamps as scripts/test-cluster.sh
    (STATE/loaded-<archive>.sha256, wiped with the cluster), so an archive it loaded is not reloaded."""
    if kubeconfig.resolve() != (KUBE_STATE / "kubeconfig").resolve():
        return   # a cluster you brought: its images are yours to load
    for image in images:
        stamp = KUBE_STATE / f"loaded-{image.archive.name}.sha256"
        digest = hashlib.sha256()
        with open(image.archive, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if stamp.exists() and stamp.read_text().strip() == digest.hexdigest():
            continue
        loaded = subprocess.run([str(LOAD_IMAGE), str(image.archive)], capture_output=True, text=True)
        assert loaded.returncode == 0, f"{LOAD_IMAGE} {image.archive}: {loaded.stderr}"
        stamp.write_text(digest.hexdigest() + "\n")


@pytest.fixture(scope="module")
def images() -> list[Image]:
    image_dir = os.environ.get("CLARA_TEST_IMAGE_DIR")
    if not image_dir:
        not_run("CLARA_TEST_IMAGE_DIR is not set: build the images with scripts/build-images.sh --oci-dir DIR "
                "and set CLARA_TEST_IMAGE_DIR=DIR (scripts/test-cluster.sh does both)")
    found = images_to_test(Path(image_dir))
    missing = [str(i.archive) for i in found if not i.archive.is_file()]
    if missing:
        not_run(f"image archives missing: {', '.join(missing)} (scripts/build-images.sh --oci-dir {image_dir})")
    return found


@pytest.fixture(scope="module")
def core(images) -> k8s.CoreV1Api:
    cluster = find_cluster()
    load_into_shared_cluster(images, cluster.kubeconfig)
    api = k8s.CoreV1Api(load_api_client(kubeconfig=str(cluster.kubeconfig)))
    namespace = cluster.create_namespace("images")
    api.namespace = namespace
    yield api
    cluster.delete_namespace(namespace)


def pod(name: str, image: str, command: list[str], state_dir: str | None = None) -> dict:
    """A pod the way the charts and the Job executor run claractl's images."""
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes = [{"name": "tmp", "emptyDir": {}}]
    if state_dir:
        mounts.append({"name": "state", "mountPath": state_dir})
        volumes.append({"name": "state", "emptyDir": {}})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False,
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "check", "image": image, "imagePullPolicy": "Never",
                                     "command": command, "volumeMounts": mounts,
                                     "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "readOnlyRootFilesystem": True,
                                                         "capabilities": {"drop": ["ALL"]}}}],
                     "volumes": volumes}}


# A container stuck in one of these never runs: report it at once instead of waiting out the timeout.
STUCK = {"ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
         "ImageInspectError", "RunContainerError"}


def run_pods(api: k8s.CoreV1Api, pods: dict[str, dict]) -> dict[str, dict]:
    """Create all pods, wait until each has ended; their output's last line, parsed, by pod name."""
    for spec in pods.values():
        api.create_namespaced_pod(api.namespace, spec)
    results: dict[str, dict] = {}
    deadline = time.monotonic() + POD_TIMEOUT
    while len(results) < len(pods):
        assert time.monotonic() < deadline, f"pods not done after {POD_TIMEOUT}s: {sorted(set(pods) - set(results))}"
        for name in set(pods) - set(results):
            status = api.read_namespaced_pod(name, api.namespace).status
            waiting = [s.state.waiting for s in status.container_statuses or [] if s.state.waiting]
            stuck = [w for w in waiting if w.reason in STUCK]
            assert not stuck, f"pod {name} ({pods[name]['spec']['containers'][0]['image']}): " \
                              f"{stuck[0].reason}: {stuck[0].message}"
            if status.phase in ("Succeeded", "Failed"):
                # raw: the client would parse a JSON log line into a dict and hand back its repr
                log = api.read_namespaced_pod_log(name, api.namespace, _preload_content=False).data.decode()
                lines = log.strip().splitlines()
                assert status.phase == "Succeeded" and lines, f"pod {name} {status.phase}:\n{log[-3000:]}"
                results[name] = json.loads(lines[-1])
        time.sleep(1)
    return results


def assert_base_python(result: dict, base: str, what: str) -> None:
    """The interpreter is the base image's: Debian's /usr/bin/python3.11 (3.11.2) on the local base,
    the official image's /usr/local one otherwise; claractl's venv adds none of its own."""
    if base.startswith(LOCAL_BASE):
        assert (result["python"], result["executable"], result["base_prefix"]) == \
            ("3.11.2", "/usr/bin/python3.11", "/usr"), what
    else:
        assert result["base_prefix"] == "/usr/local" and result["executable"].startswith("/usr/local/bin/"), what
    assert result["uid"] == 10001, what


# The postgresql image: a server initialised and started the way charts/postgresql does, one query.
POSTGRES_CHECK = """set -e
export PGDATA=/tmp/pg
printf secret > /tmp/pw
initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pw --auth=scram-sha-256 --no-locale -E UTF8 > /tmp/initdb.log 2>&1
postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port=5433 -c unix_socket_directories=/tmp > /tmp/pg.log 2>&1 &
for i in $(seq 60); do pg_isready -q -h 127.0.0.1 -p 5433 && break; sleep 0.5; done
v=$(PGPASSWORD=secret psql -h 127.0.0.1 -p 5433 -U postgres -At -c 'select version()')
printf '{"uid": %s, "version": "%s"}\\n' "$(id -u)" "$v"
"""


def test_every_image_runs_on_the_cluster(images, core):
    operator_code = (HERE / "in_pod_operator.py").read_text()
    pods, checks = {}, {}
    for image in images:
        ref, _digest, config = archive_config(image.archive)
        assert ref == image.ref, f"{image.archive} holds {ref}, not {image.ref}"
        labels = config["config"].get("Labels") or {}
        pod_name = f"image-{image.name}"[:63]
        checks[pod_name] = (image, labels["dev.claractl.base"])
        if image.name == "postgresql":          # not Python: user 999, as in the official image
            assert config["config"].get("User") == "999:999", image.name
            pods[pod_name] = pod(pod_name, image.ref, ["sh", "-c", POSTGRES_CHECK])
            continue
        assert config["config"].get("User") == "10001:10001", image.name
        if image.name == "platform":
            command = ["python", "-c", (HERE / "in_pod_platform.py").read_text()]
            pods[pod_name] = pod(pod_name, image.ref, command, state_dir="/var/lib/clara")
        else:
            module = image.dockerfile.parent.name
            command = ["python", "-c", operator_code, module, *libraries_of(image.dockerfile)]
            pods[pod_name] = pod(pod_name, image.ref, command)

    results = run_pods(core, pods)

    for pod_name, (image, base) in checks.items():
        result = results[pod_name]
        if image.name == "postgresql":
            assert result["uid"] == 999 and result["version"].startswith("PostgreSQL 15."), result
            continue
        assert_base_python(result, base, f"{image.ref}: Python {result}")
        if image.name == "platform":
            code, version = result["claractl_version"]
            assert code == 0 and version.startswith(f"claractl {image.ref.rsplit(':', 1)[1]} (Python {result['python']}"), result
            assert result["live"] == 200, result
            status, model = result["upload"]
            assert status in (200, 201) and model["name"] == "ident", result   # tar extraction works on this Python
            assert result.get("model_ready") == 200, result
            assert result["inference"] == [200, [1.5, 2, 3, 4]], result          # ONNX Runtime in the image
            assert result["serve_exit"] == 0, result["serve_log_tail"]
        else:
            code, help_text, stderr = result["help"]
            assert code == 0 and help_text.startswith(f"usage: {image.name} "), f"{image.ref}: --help: {stderr}"
            assert result["failed"] == {}, f"{image.ref}: imports failed: {result['failed']}"
            assert result["modules"][0] == f"claractl_operators.{image.dockerfile.parent.name}" and result["libraries"]
