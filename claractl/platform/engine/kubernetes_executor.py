"""The kubernetes executor: each operator of a job runs as one Kubernetes Job.

Selected by `engine.executor: kubernetes` (the platform chart sets it). The platform pod and the
operator pods share the payload volume (PVC `CLARA_K8S_DATA_CLAIM`, mounted in the platform at
its state dir): an operator's inputs and outputs are the same directories the local executor
uses, mounted with `subPath` at the operator's PDL paths (inputs read-only), the whole payload at
/payload. Environment as for the local executor (NVIDIA_CLARA_*, Triton URIs); `requests` become
resource requests and limits (cpu cores, memory MB → Mi, gpu → nvidia.com/gpu). The pod's log is
copied into the operator log when the Job ends; cancel and timeout delete the Job (background
propagation: its pods go too). At engine start, after recovery, the Jobs a crashed platform left
are deleted (kubernetes_leftovers.py) — except those of the jobs a leader-elected engine adopts:
it re-attaches to them (`adoptable`, `attach`; docs/kubernetes.md "High availability").

Settings (from the platform Deployment's environment): CLARA_K8S_NAMESPACE,
CLARA_K8S_DATA_CLAIM, CLARA_K8S_OPERATOR_IMAGE (the image for bundled `claractl/<name>` and
image-less operators), CLARA_K8S_DATA_ROOT (where the claim is mounted in the platform; default
the state dir).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from claractl.platform.config import PlatformConfig
from claractl.platform.engine.executor import ExecutorError, OperatorSpec, operator_env
from claractl.platform.engine.kubernetes_jobs import (
    JOB, JOB_ID_LABEL, OPERATOR_LABEL, OPERATOR_LABELS, POD, job_name, label_value, owner_references, resources,
)
from claractl.platform.engine.kubernetes_leftovers import remove_leftover_jobs
from claractl.platform.store import Store
from claractl.platform.store.models import Job, JobState
from claractl.kube.client import Rest, load_api_client
from claractl.kube.errors import KubeError
from claractl.kube.wait import pod_problems

log = logging.getLogger("claractl.engine")
PAYLOAD_MOUNT = "/payload"
POLL = 1.0


@dataclass
class KubernetesSettings:
    namespace: str
    data_claim: str
    operator_image: str
    data_root: Path
    service_account: str = ""        # operators get none by default (no API token in their pods)
    pull_policy: str = "IfNotPresent"
    platform_url: str = ""           # the platform API as pods reach it (its Service), for register-results
    api_token_secret: str = ""       # the Secret (key "token") operators read the API token from
    owner: str = ""                  # the platform's Deployment: owner of the Jobs, so deleting it removes them

    @classmethod
    def from_env(cls, config: PlatformConfig) -> "KubernetesSettings":
        missing = [k for k in ("CLARA_K8S_DATA_CLAIM", "CLARA_K8S_OPERATOR_IMAGE") if not os.environ.get(k)]
        if missing:
            raise ExecutorError(f"engine.executor is kubernetes but {', '.join(missing)} is not set "
                                "(the platform chart sets these on the Deployment)")
        return cls(namespace=os.environ.get("CLARA_K8S_NAMESPACE") or _pod_namespace(),
                   data_claim=os.environ["CLARA_K8S_DATA_CLAIM"],
                   operator_image=os.environ["CLARA_K8S_OPERATOR_IMAGE"],
                   data_root=Path(os.environ.get("CLARA_K8S_DATA_ROOT") or config.state_dir),
                   service_account=os.environ.get("CLARA_K8S_OPERATOR_SERVICE_ACCOUNT", ""),
                   pull_policy=os.environ.get("CLARA_K8S_OPERATOR_PULL_POLICY") or "IfNotPresent",
                   platform_url=os.environ.get("CLARA_K8S_PLATFORM_URL", ""),
                   api_token_secret=os.environ.get("CLARA_K8S_API_TOKEN_SECRET", ""),
                   owner=os.environ.get("CLARA_K8S_OWNER_DEPLOYMENT", ""))


def _pod_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"


class KubernetesExecutor:
    def __init__(self, settings: KubernetesSettings, rest: Rest | None = None) -> None:
        self.settings = settings
        self._rest = rest
        self._owner_refs: list[dict[str, Any]] | None = None

    def owner_references(self) -> list[dict[str, Any]]:
        """ownerReferences to the platform's Deployment (looked up once): `claractl destroy` deletes
        it in the foreground, and Kubernetes' garbage collector removes the operator Jobs with it."""
        if self._owner_refs is None:
            self._owner_refs = owner_references(self.rest, self.settings.namespace, self.settings.owner)
        return self._owner_refs

    @classmethod
    def from_config(cls, config: PlatformConfig) -> "KubernetesExecutor":
        return cls(KubernetesSettings.from_env(config))

    @property
    def rest(self) -> Rest:
        if self._rest is None:
            try:
                self._rest = Rest(load_api_client())
            except KubeError as exc:
                raise ExecutorError(f"kubernetes executor: {exc}") from None
        return self._rest

    def _sub_path(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.settings.data_root.resolve()).as_posix()
        except ValueError:
            raise ExecutorError(f"{path} is not on the payload volume (mounted at {self.settings.data_root})") from None

    def image(self, op: dict[str, Any]) -> str:
        """The operator's own image as the pipeline names it (bundled `claractl/<name>` images too);
        an operator with no image runs its command in the platform's image."""
        container = op.get("container") or {}
        image = container.get("image")
        if not image:
            return self.settings.operator_image
        return str(image) + (f":{container['tag']}" if container.get("tag") else "")

    def manifest(self, spec: OperatorSpec) -> dict[str, Any]:
        op = spec.operator
        command = [str(c) for c in (op.get("container") or {}).get("command") or []]
        if not command and self.image(op) == self.settings.operator_image:
            raise ExecutorError(f"operator {op['name']!r}: no container.command; a bundled operator needs one")
        # Where each PDL path is inside the pod's /payload mount (the same data as its own mount).
        in_payload = {pdl: f"{PAYLOAD_MOUNT}/{host.relative_to(spec.payload).as_posix()}"
                      for pdl, host in {**spec.io.inputs, **spec.io.outputs}.items()}
        env = operator_env(spec, {k: in_payload[k] for k in spec.io.inputs}, {k: in_payload[k] for k in spec.io.outputs},
                           in_container=True)
        env["NVIDIA_CLARA_PAYLOAD_PATH"] = PAYLOAD_MOUNT
        if self.settings.platform_url:          # the platform's loopback address means nothing in a pod
            env["CLARA_API_URL"] = self.settings.platform_url
        token = env.pop("CLARA_API_TOKEN", None)
        mounts = [{"name": "payload", "mountPath": PAYLOAD_MOUNT, "subPath": self._sub_path(spec.payload)}]
        mounts += [{"name": "payload", "mountPath": pdl, "subPath": self._sub_path(host), "readOnly": True}
                   for pdl, host in spec.io.inputs.items()]
        mounts += [{"name": "payload", "mountPath": pdl, "subPath": self._sub_path(host)}
                   for pdl, host in spec.io.outputs.items()]
        # A PDL service's volume connection: its directory on the payload volume, at the service's path.
        mounts += [{"name": "payload", "mountPath": conn.path, "subPath": self._sub_path(Path(conn.value))}
                   for conn in spec.connections if conn.kind == "volume"]
        labels = {**OPERATOR_LABELS, JOB_ID_LABEL: label_value(spec.job_id), OPERATOR_LABEL: label_value(op["name"])}
        env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        if self.settings.api_token_secret:      # never the token itself in the Job spec
            env_list.append({"name": "CLARA_API_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": self.settings.api_token_secret, "key": "token"}}})
        elif token:
            raise ExecutorError("the platform has an API token but no Secret to give it to operators "
                                "(CLARA_K8S_API_TOKEN_SECRET is not set; the platform chart sets it)")
        container: dict[str, Any] = {
            "name": "operator", "image": self.image(op), "imagePullPolicy": self.settings.pull_policy,
            "env": env_list,
            "volumeMounts": mounts, "workingDir": PAYLOAD_MOUNT,
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
        if command:
            container["command"] = command
        res = resources(op.get("requests"))
        if res:
            container["resources"] = res
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never", "containers": [container],
            "automountServiceAccountToken": bool(self.settings.service_account),
            "volumes": [{"name": "payload", "persistentVolumeClaim": {"claimName": self.settings.data_claim}}],
        }
        if self.settings.service_account:
            pod_spec["serviceAccountName"] = self.settings.service_account
        if "nvidia.com/gpu" in res.get("limits", {}):
            pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        return {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(spec.job_id, op["name"]), "namespace": self.settings.namespace,
                         **({"ownerReferences": self.owner_references()} if self.settings.owner else {}),
                         "labels": labels,
                         "annotations": {"claractl.dev/job-name": spec.job_name,
                                         "claractl.dev/pipeline": spec.pipeline_name}},
            # No activeDeadlineSeconds: a job's own timeout may exceed engine.job_timeout, and
            # the executor does not know it; the engine enforces it by deleting the Job.
            "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 3600,
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
        }

    def after_recovery(self, store: Store, adopted: frozenset[str] = frozenset()) -> list[str]:
        """Engine start, after recover(): delete the Jobs a crashed platform left, except those of
        `adopted` jobs (see kubernetes_leftovers.py), and its PDL services (adopted jobs have none).
        Returns the names of the Jobs deleted."""
        from claractl.platform.engine.kubernetes_services import remove_leftover_services   # imports this module

        try:
            rest = self.rest
        except ExecutorError as exc:
            log.warning("recovery: leftover operator Jobs not checked: %s", exc)
            return []
        remove_leftover_services(rest, self.settings.namespace)
        return remove_leftover_jobs(rest, self.settings.namespace, store, adopted=adopted)

    def adoptable(self, store: Store) -> dict[str, set[str]]:
        """RUNNING jobs a new leader can take over as they are: job id → the operators that have a
        Job on the cluster. A job qualifies when every operator the store has RUNNING still has its
        Job (running or finished; not being deleted) and it uses no PDL services (their Deployments
        belong to the engine that started them). An operator still PENDING in the store may have a
        Job too: the previous leader created it and stopped before recording it."""
        try:
            items = self.rest.list(JOB, self.settings.namespace,
                                   ",".join(f"{k}={v}" for k, v in sorted(OPERATOR_LABELS.items())))
        except (KubeError, ExecutorError) as exc:
            log.warning("adoption: cannot list operator Jobs (running jobs are re-queued instead): %s", exc)
            return {}
        live = {item["metadata"]["name"] for item in items if not item["metadata"].get("deletionTimestamp")}
        found: dict[str, set[str]] = {}
        with store.session() as s:
            for job in s.scalars(select(Job).where(Job.state == JobState.RUNNING)):
                if (job.definition or {}).get("services"):
                    continue
                with_jobs = {run.name for run in job.operators if job_name(job.id, run.name) in live}
                if all(run.name in with_jobs for run in job.operators if run.state == JobState.RUNNING):
                    found[job.id] = with_jobs
        return found

    def attach(self, spec: OperatorSpec) -> "KubernetesJob":
        """The running operator of an adopted job: its existing Job, watched from here on."""
        name = job_name(spec.job_id, spec.operator["name"])
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} Job {name} adopted by a new engine leader\n".encode())
        return KubernetesJob(self.rest, self.settings.namespace, name, spec.log_path)

    def start(self, spec: OperatorSpec) -> "KubernetesJob":
        manifest = self.manifest(spec)
        for out in spec.io.outputs.values():          # on the shared volume, seen by the pod
            out.mkdir(parents=True, exist_ok=True)
            # Operator images run as their own uid (not the platform's): let them write here.
            out.chmod(0o777)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} operator {spec.operator['name']} starts "
                      f"as Job {manifest['metadata']['name']}\n".encode())
        try:
            self.rest.call("POST", JOB.collection(self.settings.namespace), f"create Job/{manifest['metadata']['name']}",
                           body=manifest)
        except KubeError as exc:
            raise ExecutorError(f"operator {spec.operator['name']!r}: {exc}") from None
        return KubernetesJob(self.rest, self.settings.namespace, manifest["metadata"]["name"], spec.log_path)


# A pod waiting for one of these does not start by itself (a missing Secret, an image that is not
# there): after STUCK_SECONDS the operator fails with that reason instead of waiting for the job timeout.
STUCK_REASONS = ("CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff",
                 "InvalidImageName", "ErrImageNeverPull")
STUCK_SECONDS = 60.0
PODS_EVERY = 5.0                   # seconds between looks at a running Job's pods


class KubernetesJob:
    """A running operator Job; `poll()` gives its exit code once it has finished."""

    pid = 0                        # no local process: recovery has nothing to kill here

    def __init__(self, rest: Rest, namespace: str, name: str, log_path: Path, poll_interval: float = POLL,
                 stuck_seconds: float = STUCK_SECONDS) -> None:
        self.rest, self.namespace, self.name, self.log_path = rest, namespace, name, log_path
        self.poll_interval = poll_interval
        self.stuck_seconds = stuck_seconds
        self._code: int | None = None
        self._lock = threading.Lock()
        self._problem: str | None = None      # the pods' last problem, logged once when it changes
        self._problem_since = 0.0
        self._pods_checked = 0.0
        self._detached = threading.Event()

    def poll(self) -> int | None:
        with self._lock:
            if self._code is not None or self._detached.is_set():
                return self._code
            try:
                job = self.rest.get(JOB, self.namespace, self.name)
            except KubeError:
                return None            # a passing API error: ask again next time
            if job is None:
                self._finish(137, "the Job was deleted")
                return self._code
            conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []}
            if conditions.get("Complete", {}).get("status") == "True":
                self._finish(0, "Job complete")
            elif conditions.get("Failed", {}).get("status") == "True":
                failed = conditions["Failed"]
                self._finish(None, f"Job failed: {failed.get('reason', '')} {failed.get('message', '')}".strip())
            elif time.monotonic() - self._pods_checked >= PODS_EVERY:
                self._check_pods(job)
            return self._code

    def _check_pods(self, job: dict[str, Any]) -> None:
        """Log why the pod does not run (Pending: Insufficient cpu, a missing Secret, …); give up
        on a pod that cannot start by itself."""
        self._pods_checked = time.monotonic()
        problems = pod_problems(self.rest, job)
        problem = problems[0] if problems else None
        if problem != self._problem:
            self._problem, self._problem_since = problem, time.monotonic()
            if problem:
                self._append(f"--- Job {self.name}: {problem}\n")
        if problem and any(r in problem for r in STUCK_REASONS) \
                and time.monotonic() - self._problem_since >= self.stuck_seconds:
            self._finish(1, f"the pod cannot start: {problem}")
            self._delete(grace=0)

    def wait(self) -> int | None:
        """The exit code; None once detached."""
        while not self._detached.is_set():
            code = self.poll()
            if code is not None:
                return code
            self._detached.wait(self.poll_interval)
        return None

    def detach(self) -> None:
        """Stop watching and leave the Job running (the engine hands it to its next leader)."""
        self._detached.set()

    def kill(self, grace: float = 3.0) -> None:
        """Cancel or timeout: collect what the pod logged, then delete the Job and its pods."""
        with self._lock:
            if self._code is None:
                self._finish(137, "canceled: the Job was deleted")
        self._delete(grace)

    def _delete(self, grace: float) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background",
                "gracePeriodSeconds": max(0, int(grace))}
        try:
            self.rest.call("DELETE", f"{JOB.collection(self.namespace)}/{self.name}", f"delete Job/{self.name}", body=body)
        except KubeError as exc:
            if "not found" not in str(exc).lower():
                self._append(f"--- could not delete Job {self.name}: {exc}\n")

    # -- helpers -------------------------------------------------------------------------------
    def _finish(self, code: int | None, why: str) -> None:
        pods = self._pods()
        if code is None:                 # failed: the container's own exit code when known
            code = next((c for c in (_exit_code(p) for p in pods) if c), 1)
        for pod in pods:
            self._append(self._pod_log(pod["metadata"]["name"]))
        self._append(f"--- Job {self.name}: {why} (exit code {code})\n")
        self._code = code

    def _pods(self) -> list[dict[str, Any]]:
        try:
            return self.rest.list(POD, self.namespace, f"job-name={self.name}")
        except KubeError:
            return []

    def _pod_log(self, pod: str) -> str:
        try:
            data, _s, _h = self.rest.api.call_api(
                f"{POD.collection(self.namespace)}/{pod}/log", "GET", header_params={"Accept": "*/*"},   # text/plain is a 406
                response_type="str", auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=self.rest.timeout)
            return data.data.decode("utf-8", "replace")
        except Exception as exc:  # noqa: BLE001 — a missing log must not fail the job
            return f"--- log of pod {pod} not available: {type(exc).__name__}\n"

    def _append(self, text: str) -> None:
        if not text:
            return
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")


def _exit_code(pod: dict[str, Any]) -> int | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            return int(terminated["exitCode"])
    return None


__all__ = ["KubernetesExecutor", "KubernetesJob", "KubernetesSettings", "job_name", "resources"]
