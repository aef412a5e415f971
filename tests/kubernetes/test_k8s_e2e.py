"""The whole ct-segmentation flow on the real cluster, as a new user runs it:

`claractl init --blueprint ct-segmentation` → `target.type: kubernetes` with a namespace (and the
PACS's address, which a hospital fills in anyway) → `claractl apply` brings up the platform and
the inference service with no hand-made token, volume or resource tweak → dcmtk `storescu` sends
a CT to the dicom-adapter Service → operator Jobs run in their own images → the DICOM SEG arrives
at a dcmtk `storescp` outside the cluster → `claractl jobs list` and the dashboard (headless
Chromium) show the job → `claractl destroy` removes everything the project made, and waits.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import kubernetes.client as k8s
import pydicom
import pytest
from typer.testing import CliRunner

from claractl.cli.main import app
from tests.ports import free_port, wait_listening
from tools.ha.cluster import wait_for

REPO = Path(__file__).resolve().parents[2]
# How pods reach this machine (the test cluster's bridge address), and the address the DICOM
# adapter sees for a sender on this machine (kube-proxy masquerades to the same address).
HOST_FROM_PODS = os.environ.get("CLARA_TEST_HOST_FROM_PODS", "10.42.0.1")


def cli(project: Path, *args: str):
    result = CliRunner().invoke(app, ["-C", str(project), *args], env={"CI": "true", "COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture
def storescp(tmp_path):
    """The hospital PACS: dcmtk storescp on this machine, listening on every address."""
    port = free_port()
    out = tmp_path / "pacs"
    out.mkdir()
    proc = subprocess.Popen(["/usr/bin/storescp", "--aetitle", "PACS1", "--output-directory", str(out),
                             "--filename-extension", ".dcm", str(port)],
                            env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    wait_listening(port)
    yield port, out
    proc.terminate()
    proc.wait(timeout=10)


def make_project(root: Path, namespace: str, pacs_port: int) -> Path:
    project = root / "ct-project"
    code, out = cli(root, "init", str(project), "--blueprint", "ct-segmentation")
    assert code == 0, out
    text = (project / "clara.yaml").read_text()
    text = text.replace("target:\n  type: local\n  local: {state-dir: .clara}",
                        f"target:\n  type: kubernetes\n  kubernetes: {{namespace: {namespace}}}")
    text = text.replace("{name: pacs-main, ae-title: PACS1, host: 127.0.0.1}",
                        f"{{name: pacs-main, ae-title: PACS1, host: {HOST_FROM_PODS}}}")
    text = re.sub(r"\{name: pacs, ae-title: PACS1, host: 127\.0\.0\.1, port: \d+\}",
                  f"{{name: pacs, ae-title: PACS1, host: {HOST_FROM_PODS}, port: {pacs_port}}}", text)
    assert f"namespace: {namespace}" in text and str(pacs_port) in text
    (project / "clara.yaml").write_text(text)
    return project


def test_ct_segmentation_on_the_cluster_from_init_to_destroy(cluster, api_client, namespace, storescp, tmp_path):
    pacs_port, pacs_dir = storescp
    project = make_project(tmp_path, namespace, pacs_port)
    core, batch, apps = k8s.CoreV1Api(api_client), k8s.BatchV1Api(api_client), k8s.AppsV1Api(api_client)
    env_before = dict(os.environ)
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    namespace_before = objects_in(core, batch, apps, namespace)     # what the cluster itself puts there
    try:
        code, out = cli(project, "apply", "--auto-approve")
        assert code == 0, out
        assert "Apply complete" in out
        for name in ("clara-platform", "clara-triton"):
            dep = apps.read_namespaced_deployment(name, namespace)
            assert dep.status.available_replicas == 1, name
        code, out = cli(project, "plan", "--detailed-exitcode")
        assert code == 0, out                               # converged: nothing more to do

        # A CT study to the dicom-adapter Service, as a modality on the hospital network sends it.
        study = tmp_path / "study"
        subprocess.run([sys.executable, str(REPO / "tools" / "phantom.py"), "--out", str(study), "--seed", "7"],
                       check=True, stdout=subprocess.DEVNULL)
        adapter = core.read_namespaced_service("clara-dicom-adapter", namespace)
        sent = subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "ORGANSEG", "+sd",
                               adapter.spec.cluster_ip, str(adapter.spec.ports[0].port), str(study / "dicom")],
                              env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr

        seg_file = wait_for(lambda: next(pacs_dir.glob("*.dcm"), None), 300, "the SEG at the PACS", every=2)
        seg = pydicom.dcmread(seg_file)
        assert seg.Modality == "SEG" and seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
        source = pydicom.dcmread(next((study / "dicom").iterdir()), stop_before_pixels=True)
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
        assert {s.SegmentLabel.lower() for s in seg.SegmentSequence} >= {"liver", "spleen"}

        # The operators ran as Jobs, each in its own image.
        images = {j.metadata.labels["claractl.dev/operator"]: j.spec.template.spec.containers[0].image
                  for j in batch.list_namespaced_job(namespace).items}
        assert images == {op: f"claractl/{op}:0.1.0" for op in
                          ("dicom-reader", "ai-inference", "dicom-seg-writer", "register-results")}

        # claractl jobs reaches the platform on the cluster (through the API server's service proxy).
        code, out = cli(project, "jobs", "list", "-o", "json")
        assert code == 0, out
        (job,) = json.loads(out)
        assert (job["state"], job["status"]) == ("STOPPED", "HEALTHY")
        code, out = cli(project, "jobs", "describe", job["id"])
        assert code == 0 and "register-results" in out, out

        check_dashboard(core, namespace, job["id"])

        code, out = cli(project, "destroy", "--auto-approve")
        assert code == 0, out
        assert "Destroy complete" in out
        left = sorted(set(objects_in(core, batch, apps, namespace)) - set(namespace_before))
        assert left == [], f"destroy left these behind: {left}"
    finally:
        os.environ.clear()
        os.environ.update(env_before)


def check_dashboard(core, namespace: str, job_id: str) -> None:
    """The dashboard served by the platform pod, through the render Service, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    from tests.render.conftest import CHROMIUM, CHROMIUM_ARGS

    token = core.read_namespaced_secret("clara-platform-api-token", namespace).data["token"]
    import base64
    token = base64.b64decode(token).decode()
    render = core.read_namespaced_service("clara-render", namespace)
    url = f"http://{render.spec.cluster_ip}:{render.spec.ports[0].port}/ui/?token={token}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            row = page.locator(f"tr[data-job-id='{job_id}']")
            row.wait_for(timeout=15000)
            assert "HEALTHY" in row.inner_text()
        finally:
            browser.close()


def objects_in(core, batch, apps, namespace: str) -> list[str]:
    """Kind/name of what the namespace holds, of the kinds a project or its platform makes."""
    found = [f"Deployment/{d.metadata.name}" for d in apps.list_namespaced_deployment(namespace).items]
    found += [f"Job/{j.metadata.name}" for j in batch.list_namespaced_job(namespace).items]
    found += [f"Pod/{p.metadata.name}" for p in core.list_namespaced_pod(namespace).items]
    found += [f"Service/{s.metadata.name}" for s in core.list_namespaced_service(namespace).items]
    found += [f"PersistentVolumeClaim/{c.metadata.name}" for c in core.list_namespaced_persistent_volume_claim(namespace).items]
    found += [f"ConfigMap/{c.metadata.name}" for c in core.list_namespaced_config_map(namespace).items]
    found += [f"Secret/{s.metadata.name}" for s in core.list_namespaced_secret(namespace).items]
    found += [f"ServiceAccount/{s.metadata.name}" for s in core.list_namespaced_service_account(namespace).items]
    return found
