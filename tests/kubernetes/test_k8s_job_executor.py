"""The engine's kubernetes executor on the real cluster: the Job it creates, checked field by field
and accepted by the API server; real operator pods (busybox) that read their inputs and write
their outputs on the payload volume; exit codes, pod logs, cancel, timeout, and the engine running
a two-operator pipeline as Jobs in DAG order."""

from __future__ import annotations

import threading
import time

import pytest

from claractl.kube.client import KINDS
from claractl.platform.config import PlatformConfig
from claractl.platform.engine import executor_for
from claractl.platform.engine.executor import ExecutorError, OperatorSpec
from claractl.platform.engine.kubernetes_executor import KubernetesExecutor, KubernetesSettings
from claractl.platform.engine.layout import operator_io
from cluster import BUSYBOX
from conftest import kubernetes_platform
from tests.ports import served

DEFINITION = {
    "api-version": "0.6.0", "name": "ct-seg",
    "operators": [
        {"name": "dicom-reader", "container": {"image": "claractl/dicom-reader", "tag": "0.1.0",
                                               "command": ["python", "-m", "claractl_operators.dicom_reader"]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}],
         "variables": {"THRESHOLD": "0.5"}},
        {"name": "Segment_CT", "container": {"image": "nvcr.io/nvidia/clara/seg", "tag": "1.2"},
         "input": [{"from": "dicom-reader", "path": "/in"}],
         "output": [{"name": "masks", "path": "/out/masks"}],
         "requests": {"cpu": 2, "memory": 4096, "gpu": 1}},
        {"name": "no-image", "container": {"command": ["sh", "-c", "true"]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}]},
    ],
}
JOB_ID = "5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"


def settings(namespace, root, **kw) -> KubernetesSettings:
    return KubernetesSettings(namespace=namespace, data_claim="clara-platform-data",
                              operator_image="claractl/platform:0.1.0", data_root=root,
                              platform_url=f"http://clara-platform.{namespace}.svc:8765",
                              api_token_secret="clara-platform-api-token", **kw)


@pytest.fixture
def setup(rest, namespace, payload_volume):
    payload = payload_volume / "payloads" / "p-123"
    (payload / "input").mkdir(parents=True)
    rest.call("POST", KINDS["Secret"].collection(namespace), "create Secret", body={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "clara-platform-api-token"},
        "stringData": {"token": "s3cret"}})
    return KubernetesExecutor(settings(namespace, payload_volume), rest), payload, payload_volume


def spec_for(payload, root, op, env=None) -> OperatorSpec:
    definition = {**DEFINITION, "operators": [op] if op not in DEFINITION["operators"] else DEFINITION["operators"]}
    return OperatorSpec(job_id=JOB_ID, job_name="study-42", pipeline_name="ct-seg", operator=op, payload=payload,
                        io=operator_io(payload, definition, op), log_path=root / "logs" / f"{op['name']}.log",
                        platform_env={"NVIDIA_TRITON_HTTPURI": "clara-triton:8000",
                                      "NVIDIA_TRITON_GRPCURI": "clara-triton:8001",
                                      "CLARA_API_URL": "http://127.0.0.1:8765", "CLARA_API_TOKEN": "s3cret",
                                      **(env or {})})


def busybox_op(name, script, requests=None):
    op = {"name": name, "container": {"image": BUSYBOX, "command": ["sh", "-c", script]},
          "input": [{"path": "/input"}], "output": [{"path": "/output"}]}
    if requests:
        op["requests"] = requests
    return op


def test_job_spec_field_by_field(setup, rest, namespace):
    executor, payload, root = setup
    manifest = executor.manifest(spec_for(payload, root, DEFINITION["operators"][1]))
    name = manifest["metadata"]["name"]
    assert name.startswith("clara-5f0c1a2b-segment-ct-") and len(name) <= 63
    meta = manifest["metadata"]
    assert meta["labels"]["claractl.dev/job-id"] == JOB_ID
    assert meta["labels"]["claractl.dev/operator"] == "Segment_CT"
    assert meta["annotations"] == {"claractl.dev/job-name": "study-42", "claractl.dev/pipeline": "ct-seg"}
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0 and "activeDeadlineSeconds" not in spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["volumes"] == [{"name": "payload", "persistentVolumeClaim": {"claimName": "clara-platform-data"}}]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    (c,) = pod["containers"]
    assert c["image"] == "nvcr.io/nvidia/clara/seg:1.2" and "command" not in c and c["imagePullPolicy"] == "IfNotPresent"
    assert c["volumeMounts"] == [
        {"name": "payload", "mountPath": "/payload", "subPath": "payloads/p-123"},
        {"name": "payload", "mountPath": "/in", "subPath": "payloads/p-123/operators/dicom-reader", "readOnly": True},
        {"name": "payload", "mountPath": "/out/masks", "subPath": "payloads/p-123/operators/Segment_CT/masks"},
    ]
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"},
                              "limits": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"}}
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["NVIDIA_CLARA_JOB_ID"] == JOB_ID and env["NVIDIA_CLARA_JOB_NAME"] == "study-42"
    assert env["NVIDIA_CLARA_PIPELINE_NAME"] == "ct-seg" and env["NVIDIA_CLARA_OPERATOR_NAME"] == "Segment_CT"
    assert env["NVIDIA_CLARA_PAYLOAD_PATH"] == "/payload"
    assert env["NVIDIA_CLARA_INPUT_PATHS"] == '{"/in": "/payload/operators/dicom-reader"}'
    assert env["NVIDIA_CLARA_OUTPUT_PATHS"] == '{"/out/masks": "/payload/operators/Segment_CT/masks"}'
    assert env["NVIDIA_TRITON_HTTPURI"] == "clara-triton:8000"
    # Fix 10: the platform as pods reach it, and its token only as a Secret reference.
    assert env["CLARA_API_URL"] == f"http://clara-platform.{namespace}.svc:8765"
    assert env["CLARA_API_TOKEN"] == {"secretKeyRef": {"name": "clara-platform-api-token", "key": "token"}}
    assert "s3cret" not in str(manifest)
    # The real API server accepts it as it is.
    rest.call("POST", KINDS["Job"].collection(namespace), "create Job (dry run)", query=[("dryRun", "All")],
              body=manifest)


def test_operators_run_in_their_own_images(setup):
    """Fix: no silent swap of `claractl/*` images; only an operator without an image uses the platform's."""
    executor, payload, root = setup
    reader, _seg, imageless = DEFINITION["operators"]
    (c,) = executor.manifest(spec_for(payload, root, reader))["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "claractl/dicom-reader:0.1.0"
    assert c["command"] == ["python", "-m", "claractl_operators.dicom_reader"]
    assert {"name": "THRESHOLD", "value": "0.5"} in c["env"] and "resources" not in c
    (c,) = executor.manifest(spec_for(payload, root, imageless))["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "claractl/platform:0.1.0" and c["command"] == ["sh", "-c", "true"]


def test_an_operator_job_reads_its_input_writes_its_output_and_its_log_is_kept(setup):
    executor, payload, root = setup
    (payload / "input" / "a.txt").write_text("hello from the payload\n")
    op = busybox_op("copy", "cat /input/a.txt > /output/b.txt && echo copied $(cat /input/a.txt | wc -c) bytes "
                            "&& echo $CLARA_API_URL token=$CLARA_API_TOKEN")
    spec = spec_for(payload, root, op)
    running = executor.start(spec)
    running.poll_interval = 0.3
    assert running.wait() == 0
    assert (payload / "operators" / "copy" / "b.txt").read_text() == "hello from the payload\n"
    log = spec.log_path.read_text()
    assert "copied 23 bytes" in log and "Job complete (exit code 0)" in log
    assert "http://clara-platform." in log and "token=s3cret" in log     # the Secret reached the pod


def test_a_pod_that_cannot_start_fails_the_operator_with_its_reason(setup, rest, namespace):
    executor, payload, root = setup
    spec = spec_for(payload, root, {**busybox_op("x", "true"),
                                    "container": {"image": "localhost/claractl-test/absent", "tag": "1",
                                                  "command": ["true"]}})
    running = executor.start(spec)
    running.poll_interval, running.stuck_seconds = 0.3, 3
    assert running.wait() == 1
    log = spec.log_path.read_text()
    assert "the pod cannot start: Pod clara-5f0c1a2b-x-" in log and "ErrImage" in log or "ImagePullBackOff" in log


def test_failure_reports_the_container_exit_code_and_its_log(setup):
    executor, payload, root = setup
    spec = spec_for(payload, root, busybox_op("fail", "echo 'CUDA error: out of memory' >&2; exit 3"))
    running = executor.start(spec)
    running.poll_interval = 0.3
    assert running.wait() == 3
    log = spec.log_path.read_text()
    assert "CUDA error: out of memory" in log and "BackoffLimitExceeded" in log


def test_cancel_deletes_the_job_and_ends_the_wait(setup, rest, namespace):
    executor, payload, root = setup
    running = executor.start(spec_for(payload, root, busybox_op("sleepy", "sleep 600")))
    running.poll_interval = 0.2
    codes = []
    waiter = threading.Thread(target=lambda: codes.append(running.wait()))
    waiter.start()
    time.sleep(1)
    assert codes == []                                              # still running
    running.kill()
    waiter.join(timeout=10)
    assert codes and codes[0] != 0
    deadline = time.monotonic() + 30
    while rest.get(KINDS["Job"], namespace, running.name) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rest.get(KINDS["Job"], namespace, running.name) is None


def test_start_errors_are_executor_errors(setup, rest, namespace):
    executor, payload, root = setup
    executor.settings.namespace = "absent-namespace"
    with pytest.raises(ExecutorError, match="namespace 'absent-namespace' does not exist"):
        executor.start(spec_for(payload, root, DEFINITION["operators"][1]))
    executor.settings.namespace = namespace
    outside = OperatorSpec(job_id=JOB_ID, job_name="j", pipeline_name="p", operator=DEFINITION["operators"][1],
                           payload=root.parent / "elsewhere", io=operator_io(root.parent / "elsewhere", DEFINITION,
                                                                              DEFINITION["operators"][1]),
                           log_path=root / "x.log")
    with pytest.raises(ExecutorError, match="not on the payload volume"):
        executor.manifest(outside)


def test_a_token_without_a_secret_is_refused_rather_than_written_into_the_job(rest, namespace, payload_volume):
    payload = payload_volume / "payloads" / "p-9"
    executor = KubernetesExecutor(KubernetesSettings(namespace=namespace, data_claim="clara-platform-data",
                                                     operator_image="claractl/platform:0.1.0",
                                                     data_root=payload_volume), rest)
    with pytest.raises(ExecutorError, match="no Secret to give it to operators"):
        executor.manifest(spec_for(payload, payload_volume, DEFINITION["operators"][0]))


def test_the_engine_selects_the_executor_from_config(monkeypatch, tmp_path):
    config = PlatformConfig(state_dir=str(tmp_path))
    assert type(executor_for(config)).__name__ == "LocalExecutor"
    config.engine.executor = "kubernetes"
    monkeypatch.delenv("CLARA_K8S_DATA_CLAIM", raising=False)
    with pytest.raises(ExecutorError, match="CLARA_K8S_DATA_CLAIM"):
        executor_for(config)
    monkeypatch.setenv("CLARA_K8S_DATA_CLAIM", "clara-platform-data")
    monkeypatch.setenv("CLARA_K8S_OPERATOR_IMAGE", "claractl:1")
    monkeypatch.setenv("CLARA_K8S_NAMESPACE", "radiology")
    monkeypatch.setenv("CLARA_K8S_PLATFORM_URL", "http://clara-platform.radiology.svc:8765")
    monkeypatch.setenv("CLARA_K8S_API_TOKEN_SECRET", "clara-platform-api-token")
    executor = executor_for(config)
    assert isinstance(executor, KubernetesExecutor)
    assert executor.settings.namespace == "radiology" and executor.settings.data_root == tmp_path
    assert executor.settings.platform_url.endswith(".radiology.svc:8765")
    assert executor.settings.api_token_secret == "clara-platform-api-token"


# ---- through the engine: a job's operators become Jobs, finish or are canceled ---------------

@pytest.fixture
def engine_api(rest, namespace, payload_volume):
    """The platform API and the engine on one store, the engine running operators as Jobs."""
    from claractl.platform.api import ApiContext, create_app
    from claractl.platform.client import PlatformClient
    from claractl.platform.engine import Engine
    from claractl.platform.engine.inference_hook import InferenceHook

    config, store, executor = kubernetes_platform(payload_volume, rest, namespace)
    engine = Engine(config, store, hook=InferenceHook(config), executor=executor, poll_interval=0.05)
    original_start = executor.start

    def start(spec):                     # poll faster than in production
        job = original_start(spec)
        job.poll_interval = 0.2
        return job
    executor.start = start
    with served(create_app(ApiContext(config, store, engine.hook, engine=engine))) as url:
        engine.start()
        yield PlatformClient(url)
        engine.stop(timeout=5)
    store.dispose()


TWO_OPS = f"""api-version: 0.6.0
name: two
operators:
- name: first
  container: {{image: "{BUSYBOX}", command: [sh, -c, "sleep 1; tr a-z A-Z < /input/a.txt > /output/upper.txt"]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  requests: {{cpu: 0.1, memory: 64}}
- name: second
  container: {{image: "{BUSYBOX}", command: [sh, -c, "cat /in/upper.txt; cp /in/upper.txt /out/"]}}
  input: [{{from: first, path: /in}}]
  output: [{{path: /out}}]
  requests: {{cpu: 0.1, memory: 64}}
"""
SLOW = f"""api-version: 0.6.0
name: slow
operators:
- name: first
  container: {{image: "{BUSYBOX}", command: [sh, -c, "sleep 600"]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
"""


def jobs_of(rest, namespace, operator):
    return [j["metadata"]["name"] for j in rest.list(KINDS["Job"], namespace, f"claractl.dev/operator={operator}")]


def wait_for_job_object(rest, namespace, operator: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = jobs_of(rest, namespace, operator)
        if names:
            return names[0]
        time.sleep(0.2)
    raise AssertionError(f"no Job for operator {operator}")


def test_engine_runs_each_operator_as_a_job_in_dag_order(engine_api, rest, namespace, tmp_path):
    client = engine_api
    client.put_pipeline("two", TWO_OPS)
    payload = client.create_payload()
    client.upload_payload_file(payload["id"], "input/a.txt", b"hello\n")
    job = client.create_job("two", payload_id=payload["id"])
    client.start_job(job["id"])
    wait_for_job_object(rest, namespace, "first")
    assert jobs_of(rest, namespace, "second") == []                # waits for its input
    done = client.wait_for_job(job["id"], timeout=120)
    assert (done["state"], done["status"]) == ("STOPPED", "HEALTHY"), done["message"]
    assert "HELLO" in client.get_job_logs(job["id"], "second")
    # (the job's own payload holds its outputs; its input came from the payload given)
    result = client.download_payload_file(done["payload_id"], "operators/second/upper.txt", tmp_path / "upper.txt")
    assert result.read_bytes() == b"HELLO\n"


def test_engine_cancel_deletes_the_running_job(engine_api, rest, namespace):
    client = engine_api
    client.put_pipeline("slow", SLOW)
    payload = client.create_payload()
    job = client.create_job("slow", payload_id=payload["id"])
    client.start_job(job["id"])
    first = wait_for_job_object(rest, namespace, "first")
    client.cancel_job(job["id"])
    done = client.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "CANCELED"
    deadline = time.monotonic() + 30
    while rest.get(KINDS["Job"], namespace, first) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rest.get(KINDS["Job"], namespace, first) is None


def test_engine_timeout_terminates_the_job_and_deletes_it(engine_api, rest, namespace):
    client = engine_api
    client.put_pipeline("slow", SLOW)
    payload = client.create_payload()
    job = client.create_job("slow", payload_id=payload["id"], timeout=3)
    client.start_job(job["id"])
    wait_for_job_object(rest, namespace, "first")
    done = client.wait_for_job(job["id"], timeout=60)
    assert done["status"] == "TERMINATED" and "timed out" in done["message"]
    assert "the Job was deleted" in client.get_job_logs(job["id"], "first")
