"""The Clara Platform API on the real cluster, reached the way a Clara user reaches it: NVIDIA's
client (from .venv-clara-client) at the `grpc` port of Service `clara-platform`, the platform
token from Secret `clara-platform-api-token` in CLARA_API_TOKEN (the client environment's token
hook, docs/clara-api.md "Authentication").

- Clara's documented workflow script, unchanged apart from its address: its operators run as
  Kubernetes Jobs in their own images (the bundled dicom-reader's; the platform's for a command);
- a pipeline's PDL `services`: a Deployment + Service the platform starts under its own Role,
  owned by its Deployment, shared by the jobs that declare it, reached by the operators through
  their connection variables (http: the Service's DNS name; volume: a shared directory mounted
  in both pods), stopped by the platform once idle.

One apply for the module (a platform without DICOM, render or Triton: nothing else is needed).
"""

from __future__ import annotations

import base64
import re
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import kubernetes.client as k8s
import pytest

from claractl import __version__ as VERSION
from claractl.kube.client import load_api_client
from claractl.platform.config import PlatformConfig
from claractl.platform.dicom.synthetic import make_ct_series
from claractl.platform.engine.kubernetes_executor import KubernetesSettings
from claractl.platform.engine.kubernetes_jobs import JOB_ID_LABEL, OPERATOR_LABEL
from claractl.platform.engine.kubernetes_services import SERVICE_SELECTOR, KubernetesServiceLauncher
from claractl.platform.engine.services import ServiceError, ServiceManager
from claractl.platform.pdl_services import declared
from cluster import BUSYBOX
from conftest import kubernetes_platform
from test_k8s_e2e import cli, wait_for
from tests.clara_api.support import check_workflow_results, client_code, ct_pipeline, docs_workflow, run_client, \
    run_script

PROJECT = """\
apiVersion: claractl/v1
kind: Project
name: clara-api
target:
  type: kubernetes
  kubernetes: {{namespace: {namespace}}}
services:
  platform: {{service-idle: 15}}     # the idle stop below (default 60 s); long enough for the second job to join
  dicom-adapter: {{enabled: false}}
  triton: {{enabled: false}}
  render: {{enabled: false}}
"""
BUSYBOX_IMAGE, BUSYBOX_TAG = BUSYBOX.rsplit(":", 1)


@dataclass
class Deployed:
    project: Path
    namespace: str
    api: k8s.ApiClient
    ip: str                  # the platform Service's ClusterIP (this machine reaches it)
    port: int                # its grpc port
    token: str

    def run(self, body: str, token: str | None = None, **values) -> object:
        """NVIDIA's clients at the platform Service (support.PREAMBLE), the JSON the script printed last."""
        return run_script(client_code(body, self.ip, self.port, **values), timeout=300, token=token)


@pytest.fixture(scope="module")
def deployed(cluster, tmp_path_factory):
    namespace = cluster.create_namespace("clara-api")
    project = tmp_path_factory.mktemp("clara-api-project")
    (project / "clara.yaml").write_text(PROJECT.format(namespace=namespace))
    api = load_api_client(kubeconfig=str(cluster.kubeconfig))
    core = k8s.CoreV1Api(api)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("KUBECONFIG", str(cluster.kubeconfig))
            code, out = cli(project, "apply", "--auto-approve")
            assert code == 0, out
            service = core.read_namespaced_service("clara-platform", namespace)
            (grpc_port,) = [p.port for p in service.spec.ports if p.name == "grpc"]
            secret = core.read_namespaced_secret("clara-platform-api-token", namespace)
            yield Deployed(project, namespace, api, service.spec.cluster_ip, grpc_port,
                           base64.b64decode(secret.data["token"]).decode())
    finally:
        cluster.delete_namespace(namespace)


def test_clara_documented_workflow_through_the_platform_service(deployed, tmp_path):
    ct_pipeline(tmp_path, "ct-volume", inline=True).rename(tmp_path / "ct_volume_pipeline.yaml")
    make_ct_series(tmp_path / "ct-input" / "dcm", slices=6, size=32)
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    script = docs_workflow(deployed.ip, deployed.port)      # only the two address lines differ

    # Beyond loopback, reads answer anyone; writes need the token.
    refused = deployed.run('out(dict(read=[p.name for p in pipelines.list_pipelines()], '
                           'write=error(payloads.create_payload)))')
    assert refused["read"] == [] and "StatusCode.UNAUTHENTICATED" in refused["write"]

    job_id, _payload_id, _pipeline_id, status = run_client(script, cwd=work, timeout=300,
                                                           token=deployed.token).split()
    assert status == "1"                                    # JobStatus.Healthy
    check_workflow_results(work / "results")

    # Each operator ran as a Kubernetes Job in its own image.
    jobs = k8s.BatchV1Api(deployed.api).list_namespaced_job(
        deployed.namespace, label_selector=f"{JOB_ID_LABEL}={uuid.UUID(job_id)}").items
    assert {j.metadata.labels[OPERATOR_LABEL]: j.spec.template.spec.containers[0].image for j in jobs} == {
        "dicom-reader": f"claractl/dicom-reader:{VERSION}", "summary": f"claractl/platform:{VERSION}"}

    # One job, one id: claractl (through the target) finds it by the id the Clara client got.
    code, out = cli(deployed.project, "jobs", "describe", job_id)
    assert code == 0, out
    assert job_id in out and str(uuid.UUID(job_id)) in out and "HEALTHY" in out


# The service answers its variable over http and leaves a file in its volume connection; the
# operator reads both through its connection variables.
SERVICE_PIPELINE = textwrap.dedent(f"""\
    api-version: 0.4.0
    name: with-service
    operators:
    - name: ask
      container:
        image: {BUSYBOX_IMAGE}
        tag: "{BUSYBOX_TAG}"
        command:
        - sh
        - -c
        - >-
          wget -q -O /out/answer.txt "http://$MY_SERVICE_URI/index.html" &&
          cp "$SHARED_DIR/from-service.txt" /out/shared.txt &&
          echo "$MY_SERVICE_URI $SHARED_DIR" > /out/env.txt
      output: [{{path: /out}}]
      requests: {{cpu: 0.1, memory: 64}}
      services:
      - name: echo-service
        container:
          image: {BUSYBOX_IMAGE}
          tag: "{BUSYBOX_TAG}"
          command:
          - sh
          - -c
          - >-
            mkdir -p /tmp/www && echo "$GREETING" > /tmp/www/index.html &&
            echo "written by $HOSTNAME" > "$SHARED_DIR/from-service.txt" &&
            exec httpd -f -p 8080 -h /tmp/www
        variables: {{GREETING: hello-from-pdl}}
        requests: {{cpu: 0.1, memory: 64}}
        connections:
          http: [{{name: MY_SERVICE_URI, port: 8080}}]
          volume: [{{name: SHARED_DIR, path: /shared}}]
    """)

RUN_SERVICE_JOB = '''
pipeline = [p for p in pipelines.list_pipelines() if p.name == "with-service"]
pipeline_id = pipeline[0].pipeline_id if pipeline else pipelines.create_pipeline(
    definition=[pipeline_types.PipelineDefinition(name="with-service.yaml", content={definition!r})])
job = jobs.create_job(job_name="asks-the-service", pipeline_id=pipeline_id)
jobs.start_job(job_id=job.job_id)
status = wait_stopped(job.job_id, timeout=240)
files = {{}}
for name in ("answer.txt", "shared.txt", "env.txt"):
    buf = io.BytesIO()
    payloads.download_from(payload_id=job.payload_id, blob_name="/operators/ask/" + name, dest_obj=buf)
    files[name[:-len(".txt")]] = buf.getvalue().decode().strip()
out(dict(status=int(status.job_status), messages=list(status.messages), **files))
'''


def test_pdl_service_runs_as_a_deployment_of_the_platform_and_stops_when_idle(deployed):
    apps, core = k8s.AppsV1Api(deployed.api), k8s.CoreV1Api(deployed.api)
    ns = deployed.namespace
    first = deployed.run(RUN_SERVICE_JOB, token=deployed.token, definition=SERVICE_PIPELINE)
    assert first["status"] == 1, first["messages"]                         # JobStatus.Healthy

    (deployment,) = apps.list_namespaced_deployment(ns, label_selector=SERVICE_SELECTOR).items
    name = deployment.metadata.name
    (service,) = core.list_namespaced_service(ns, label_selector=SERVICE_SELECTOR).items
    assert service.metadata.name == name and [p.port for p in service.spec.ports] == [8080]
    platform = apps.read_namespaced_deployment("clara-platform", ns)
    for obj in (deployment, service):                      # garbage-collected with the platform
        assert [(o.kind, o.name, o.uid) for o in obj.metadata.owner_references] == [
            ("Deployment", "clara-platform", platform.metadata.uid)]
    assert deployment.spec.template.spec.containers[0].image == BUSYBOX
    (pod,) = core.list_namespaced_pod(ns, label_selector=SERVICE_SELECTOR).items

    assert first["answer"] == "hello-from-pdl"                              # http connection + variables
    assert first["shared"] == f"written by {pod.metadata.name}"             # volume connection
    assert first["env"] == f"{name}.{ns}.svc:8080 /shared"

    # A second job declaring the same service joins the running one.
    second = deployed.run(RUN_SERVICE_JOB, token=deployed.token, definition=SERVICE_PIPELINE)
    assert second["status"] == 1 and second["answer"] == "hello-from-pdl", second["messages"]
    assert [p.metadata.uid for p in core.list_namespaced_pod(ns, label_selector=SERVICE_SELECTOR).items] \
        == [pod.metadata.uid]

    # Idle for service-idle (15 s here): the platform deletes both objects, and says so.
    wait_for(lambda: not apps.list_namespaced_deployment(ns, label_selector=SERVICE_SELECTOR).items
             and not core.list_namespaced_service(ns, label_selector=SERVICE_SELECTOR).items,
             90, "the idle service to be stopped", every=2)
    platform_pod = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/name=platform").items[0]
    log = core.read_namespaced_pod_log(platform_pod.metadata.name, ns)
    assert "stopped (idle)" in log and "service echo-service-" in log


def test_a_service_whose_pod_cannot_start_fails_the_job_naming_the_reason(rest, namespace, payload_volume):
    """The launcher as the engine uses it (here with this test's credentials and a payload volume
    of this machine): an image nobody can pull is given up on, named, and its objects removed."""
    config = PlatformConfig(state_dir=str(payload_volume))
    settings = KubernetesSettings(namespace=namespace, data_claim="clara-platform-data",
                                  operator_image=f"claractl/platform:{VERSION}", data_root=payload_volume)
    manager = ServiceManager(config, KubernetesServiceLauncher(settings, rest, stuck_seconds=3), ready_timeout=120)
    definition = {"operators": [{"name": "ask", "services": [{
        "name": "model-server", "container": {"image": "localhost/claractl-test/no-such-image", "tag": "1"},
        "connections": {"http": [{"name": "MODEL_URI", "port": 8080}]}}]}]}
    with pytest.raises(ServiceError) as failed:
        manager.acquire("job-1", definition, {})
    message = str(failed.value)
    assert re.fullmatch(r"service 'model-server' of operator 'ask' \(localhost/claractl-test/no-such-image:1\) could "
                        r"not start: Deployment clara-svc-model-server-[\w-]+: Pod clara-svc-model-server-\S+: "
                        r"container service: (ErrImagePull|ImagePullBackOff): .*no-such-image.*", message, re.S), message
    assert manager.status() == []
    apps, core = k8s.AppsV1Api(rest.api), k8s.CoreV1Api(rest.api)
    wait_for(lambda: not apps.list_namespaced_deployment(namespace, label_selector=SERVICE_SELECTOR).items
             and not core.list_namespaced_service(namespace, label_selector=SERVICE_SELECTOR).items,
             60, "the failed service's objects to be deleted")


def test_services_a_crashed_platform_left_are_deleted_at_engine_start(rest, namespace, payload_volume):
    """A platform killed while a service ran leaves its Deployment + Service; the next engine's
    start removes them (and nothing without the services' labels)."""
    config, store, executor = kubernetes_platform(payload_volume, rest, namespace)
    launcher = KubernetesServiceLauncher(executor.settings, rest)
    decl = declared({"name": "model-server", "container": {"image": BUSYBOX_IMAGE, "tag": BUSYBOX_TAG,
                                                           "command": ["httpd", "-f", "-p", "8080"]},
                     "connections": {"http": [{"name": "MODEL_URI", "port": 8080}]}})
    launcher.start(decl, "model-server-1", payload_volume / "services" / "model-server-1", payload_volume,
                   payload_volume / "model-server.log")
    apps, core = k8s.AppsV1Api(rest.api), k8s.CoreV1Api(rest.api)
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "hand-made", "labels": {"app.kubernetes.io/name": "clara-pipeline-service"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "hand-made"}},
                 "template": {"metadata": {"labels": {"app": "hand-made"}},
                              "spec": {"containers": [{"name": "c", "image": BUSYBOX}]}}}})
    assert len(apps.list_namespaced_deployment(namespace, label_selector=SERVICE_SELECTOR).items) == 1

    executor.after_recovery(store)

    assert apps.list_namespaced_deployment(namespace, label_selector=SERVICE_SELECTOR).items == []
    assert core.list_namespaced_service(namespace, label_selector=SERVICE_SELECTOR).items == []
    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == ["hand-made"]
