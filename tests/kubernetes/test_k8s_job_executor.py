"""The engine's kubernetes executor against the API server stand-in: the Job it creates, checked
field by field; status transitions driven by the test (status subresource); logs; cancel."""

from __future__ import annotations

import threading
import time

import pytest

from claractl.platform.config import PlatformConfig
from claractl.platform.engine import executor_for
from claractl.platform.engine.executor import ExecutorError, OperatorSpec
from claractl.platform.engine.kubernetes_executor import KubernetesExecutor, KubernetesSettings
from claractl.platform.engine.layout import operator_io
from conftest import NAMESPACE, kubernetes_platform
from standin.server import _res
from tests.ports import served

DEFINITION = {
    "api-version": "0.6.0", "name": "ct-seg",
    "operators": [
        {"name": "dicom-reader", "container": {"image": "claractl/dicom-reader",
                                               "command": ["python", "-m", "claractl_operators.dicom_reader"]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}],
         "variables": {"THRESHOLD": "0.5"}},
        {"name": "Segment_CT", "container": {"image": "nvcr.io/nvidia/clara/seg", "tag": "1.2"},
         "input": [{"from": "dicom-reader", "path": "/in"}],
         "output": [{"name": "masks", "path": "/out/masks"}],
         "requests": {"cpu": 2, "memory": 4096, "gpu": 1}},
    ],
}
JOB_ID = "5f0c1a2b3c4d4e5f8a9b0c1d2e3f4a5b"


@pytest.fixture
def setup(standin, rest, tmp_path):
    payload = tmp_path / "payloads" / "p-123"
    (payload / "input").mkdir(parents=True)
    settings = KubernetesSettings(namespace=NAMESPACE, data_claim="clara-platform-data",
                                  operator_image="registry.example/claractl:0.3", data_root=tmp_path)
    return KubernetesExecutor(settings, rest), payload, tmp_path


def spec_for(payload, tmp_path, index: int) -> OperatorSpec:
    op = DEFINITION["operators"][index]
    return OperatorSpec(job_id=JOB_ID, job_name="study-42", pipeline_name="ct-seg", operator=op, payload=payload,
                        io=operator_io(payload, DEFINITION, op), log_path=tmp_path / "logs" / f"{op['name']}.log",
                        platform_env={"NVIDIA_TRITON_HTTPURI": "http://clara-triton:8000",
                                      "NVIDIA_TRITON_GRPCURI": "clara-triton:8001"})


def job_of(standin, name):
    return standin.store.get(_res("batch", "v1", "jobs"), NAMESPACE, name)


def make_pod(standin, job: str, log: str, exit_code: int | None = None) -> None:
    pods = _res("", "v1", "pods")
    standin.store.create(pods, NAMESPACE, {"metadata": {"name": f"{job}-abcde", "labels": {"job-name": job}},
                                           "spec": {"containers": [{"name": "operator", "image": "x"}]}},
                         "kube-controller-manager", False)
    if exit_code is not None:
        pod = standin.store.get(pods, NAMESPACE, f"{job}-abcde")
        pod["status"] = {"phase": "Failed", "containerStatuses": [
            {"name": "operator", "state": {"terminated": {"exitCode": exit_code, "reason": "Error"}}}]}
        standin.store.update(pods, NAMESPACE, f"{job}-abcde", pod, "kubelet", False, subresource="status")
    standin.set_pod_log(NAMESPACE, f"{job}-abcde", log)


def test_job_spec_field_by_field(setup, standin):
    executor, payload, root = setup
    running = executor.start(spec_for(payload, root, 1))
    job = job_of(standin, running.name)
    assert running.name.startswith("clara-5f0c1a2b-segment-ct-") and len(running.name) <= 63
    meta = job["metadata"]
    assert meta["labels"]["claractl.dev/job-id"] == JOB_ID
    assert meta["labels"]["claractl.dev/operator"] == "Segment_CT"
    assert meta["annotations"] == {"claractl.dev/job-name": "study-42", "claractl.dev/pipeline": "ct-seg"}
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and "activeDeadlineSeconds" not in spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert spec["template"]["metadata"]["labels"]["claractl.dev/operator"] == "Segment_CT"
    assert pod["volumes"] == [{"name": "payload", "persistentVolumeClaim": {"claimName": "clara-platform-data"}}]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    (c,) = pod["containers"]
    assert c["image"] == "nvcr.io/nvidia/clara/seg:1.2" and "command" not in c
    assert c["volumeMounts"] == [
        {"name": "payload", "mountPath": "/payload", "subPath": "payloads/p-123"},
        {"name": "payload", "mountPath": "/in", "subPath": "payloads/p-123/operators/dicom-reader", "readOnly": True},
        {"name": "payload", "mountPath": "/out/masks", "subPath": "payloads/p-123/operators/Segment_CT/masks"},
    ]
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"},
                              "limits": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"}}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["NVIDIA_CLARA_JOB_ID"] == JOB_ID and env["NVIDIA_CLARA_JOB_NAME"] == "study-42"
    assert env["NVIDIA_CLARA_PIPELINE_NAME"] == "ct-seg" and env["NVIDIA_CLARA_OPERATOR_NAME"] == "Segment_CT"
    assert env["NVIDIA_CLARA_PAYLOAD_PATH"] == "/payload"
    assert env["NVIDIA_CLARA_INPUT_PATHS"] == '{"/in": "/in"}'
    assert env["NVIDIA_CLARA_OUTPUT_PATHS"] == '{"/out/masks": "/out/masks"}'
    assert env["NVIDIA_TRITON_HTTPURI"] == "http://clara-triton:8000"
    # The output directory exists on the shared volume before the pod mounts it.
    assert (payload / "operators" / "Segment_CT" / "masks").is_dir()


def test_bundled_operator_runs_in_the_operator_image_with_its_command_and_variables(setup, standin):
    executor, payload, root = setup
    running = executor.start(spec_for(payload, root, 0))
    (c,) = job_of(standin, running.name)["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.example/claractl:0.3"
    assert c["command"] == ["python", "-m", "claractl_operators.dicom_reader"]
    assert {"name": "THRESHOLD", "value": "0.5"} in c["env"]
    assert "resources" not in c
    assert c["volumeMounts"][1] == {"name": "payload", "mountPath": "/input", "subPath": "payloads/p-123/input",
                                    "readOnly": True}


def test_success_collects_the_pod_log(setup, standin):
    executor, payload, root = setup
    spec = spec_for(payload, root, 0)
    running = executor.start(spec)
    running.poll_interval = 0.05
    assert running.poll() is None                                   # no status yet: running
    make_pod(standin, running.name, "read 12 instances\nwrote /output/series-1\n")
    standin.set_job_finished(NAMESPACE, running.name, succeeded=True)
    assert running.wait() == 0
    log = spec.log_path.read_text()
    assert "read 12 instances\nwrote /output/series-1\n" in log and "Job complete (exit code 0)" in log


def test_failure_reports_the_container_exit_code_and_reason(setup, standin):
    executor, payload, root = setup
    spec = spec_for(payload, root, 1)
    running = executor.start(spec)
    make_pod(standin, running.name, "CUDA error: out of memory\n", exit_code=3)
    standin.set_job_finished(NAMESPACE, running.name, succeeded=False, message="Job has reached the specified backoff limit")
    assert running.poll() == 3
    log = spec.log_path.read_text()
    assert "CUDA error: out of memory" in log and "BackoffLimitExceeded" in log


def test_cancel_deletes_the_job_in_the_background_and_ends_the_wait(setup, standin):
    executor, payload, root = setup
    running = executor.start(spec_for(payload, root, 1))
    running.poll_interval = 0.05
    codes = []
    waiter = threading.Thread(target=lambda: codes.append(running.wait()))
    waiter.start()
    time.sleep(0.2)
    assert codes == []                                              # still running
    running.kill()
    waiter.join(timeout=5)
    assert codes and codes[0] != 0
    assert (_res("batch", "v1", "jobs").qualified, NAMESPACE, running.name) not in standin.store.objects
    assert ("Job", running.name, {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                                  "gracePeriodSeconds": 3}) in standin.delete_options


def test_start_errors_are_executor_errors(setup, standin):
    executor, payload, root = setup
    standin.forbid.add("create")
    with pytest.raises(ExecutorError, match="forbidden by RBAC"):
        executor.start(spec_for(payload, root, 1))
    outside = OperatorSpec(job_id=JOB_ID, job_name="j", pipeline_name="p", operator=DEFINITION["operators"][1],
                           payload=root.parent / "elsewhere", io=operator_io(root.parent / "elsewhere", DEFINITION,
                                                                              DEFINITION["operators"][1]),
                           log_path=root / "x.log")
    with pytest.raises(ExecutorError, match="not on the payload volume"):
        executor.manifest(outside)


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
    executor = executor_for(config)
    assert isinstance(executor, KubernetesExecutor)
    assert executor.settings.namespace == "radiology" and executor.settings.data_root == tmp_path


# ---- through the engine: a job's operators become Jobs, finish or are canceled ---------------

@pytest.fixture
def engine_api(standin, rest, tmp_path):
    """The platform API and the engine on one store, the engine running operators as Jobs."""
    from claractl.platform.api import ApiContext, create_app
    from claractl.platform.client import PlatformClient
    from claractl.platform.engine import Engine
    from claractl.platform.engine.inference_hook import InferenceHook

    config, store, executor = kubernetes_platform(tmp_path, rest)
    engine = Engine(config, store, hook=InferenceHook(config), executor=executor, poll_interval=0.05)
    original_start = executor.start

    def start(spec):                     # poll faster than in production
        job = original_start(spec)
        job.poll_interval = 0.05
        return job
    executor.start = start
    with served(create_app(ApiContext(config, store, engine.hook, engine=engine))) as url:
        engine.start()
        yield PlatformClient(url)
        engine.stop(timeout=5)
    store.dispose()


TWO_OPS = """api-version: 0.6.0
name: two
operators:
- name: first
  container: {image: claractl/x, command: [python, -c, "print(1)"]}
  input: [{path: /input}]
  output: [{path: /output}]
- name: second
  container: {image: example/seg, tag: "2"}
  input: [{from: first, path: /in}]
  output: [{path: /out}]
  requests: {cpu: 1, memory: 512}
"""


def wait_for_job_object(standin, operator: str, timeout: float = 10.0) -> str:
    jobs = _res("batch", "v1", "jobs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for (q, _ns, name), obj in list(standin.store.objects.items()):
            if q == jobs.qualified and obj["metadata"]["labels"].get("claractl.dev/operator") == operator:
                return name
        time.sleep(0.02)
    raise AssertionError(f"no Job for operator {operator}")


def test_engine_runs_each_operator_as_a_job_in_dag_order(engine_api, standin):
    client = engine_api
    client.put_pipeline("two", TWO_OPS)
    payload = client.create_payload()
    client.upload_payload_file(payload["id"], "input/a.txt", b"x")
    job = client.create_job("two", payload_id=payload["id"])
    client.start_job(job["id"])
    first = wait_for_job_object(standin, "first")
    time.sleep(0.2)
    assert not any("second" in name for (_q, _n, name) in standin.store.objects)   # waits for its input
    make_pod(standin, first, "first ran\n")
    standin.set_job_finished(NAMESPACE, first)
    second = wait_for_job_object(standin, "second")
    make_pod(standin, second, "second ran\n")
    standin.set_job_finished(NAMESPACE, second)
    done = client.wait_for_job(job["id"], timeout=20)
    assert (done["state"], done["status"]) == ("STOPPED", "HEALTHY"), done["message"]
    assert "second ran" in client.get_job_logs(job["id"], "second")


def test_engine_cancel_deletes_the_running_job(engine_api, standin):
    client = engine_api
    client.put_pipeline("two", TWO_OPS)
    payload = client.create_payload()
    job = client.create_job("two", payload_id=payload["id"])
    client.start_job(job["id"])
    first = wait_for_job_object(standin, "first")
    client.cancel_job(job["id"])
    done = client.wait_for_job(job["id"], timeout=20)
    assert done["status"] == "CANCELED"
    assert not any(name == first for (_q, _n, name) in standin.store.objects)
    assert any(kind == "Job" and name == first and body.get("propagationPolicy") == "Background"
               for kind, name, body in standin.delete_options)


def test_engine_timeout_terminates_the_job_and_deletes_it(engine_api, standin):
    client = engine_api
    client.put_pipeline("two", TWO_OPS)
    payload = client.create_payload()
    job = client.create_job("two", payload_id=payload["id"], timeout=1)
    client.start_job(job["id"])
    first = wait_for_job_object(standin, "first")
    done = client.wait_for_job(job["id"], timeout=20)
    assert done["status"] == "TERMINATED" and "timed out" in done["message"]
    assert not any(name == first for (_q, _n, name) in standin.store.objects)
    assert "the Job was deleted" in client.get_job_logs(job["id"], "first")
