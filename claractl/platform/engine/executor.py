"""Executors run one operator of one job. `local` (this module): a subprocess per operator.

- Image-less operators and bundled images `claractl/<name>` run on this machine; a command that
  starts with `python`/`python3` runs with the platform's own interpreter.
- Any other image runs through podman or docker (first found on PATH) with the payload
  directories mounted at their PDL paths; with neither installed the operator fails with a
  message that says so.
- Each operator gets its own process group (session), so cancel/timeout kill the whole tree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from claractl.platform.bundled import BUNDLED_PREFIX, is_bundled  # noqa: F401 (BUNDLED_PREFIX: kubernetes_executor)
from claractl.platform.engine.layout import OperatorIO

CONTAINER_RUNTIMES = ("podman", "docker")


class ExecutorError(Exception):
    """The operator cannot be started; the message is shown on the job."""


@dataclass
class OperatorSpec:
    job_id: str
    job_name: str
    pipeline_name: str
    operator: dict[str, Any]          # PDL operator entry, placeholders resolved
    payload: Path
    io: OperatorIO
    log_path: Path
    platform_env: dict[str, str] = field(default_factory=dict)   # Triton URIs, CLARA_API_URL, …
    connections: list[Any] = field(default_factory=list)   # services.Connection: the operator's PDL services


class RunningOperator(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def wait(self) -> int: ...
    def kill(self, grace: float = 3.0) -> None: ...


class Executor(Protocol):
    def start(self, spec: OperatorSpec) -> RunningOperator: ...


def rewrite_arg(arg: str, mapping: dict[str, Path]) -> str:
    """Replace a PDL path (exactly, or as a prefix followed by '/') with its host path."""
    for pdl in sorted(mapping, key=len, reverse=True):
        p = pdl.rstrip("/") or "/"
        if arg == pdl or arg == p:
            return str(mapping[pdl])
        if arg.startswith(p + "/"):
            return str(mapping[pdl]) + arg[len(p):]
    return arg


def operator_env(spec: OperatorSpec, inputs: dict[str, str], outputs: dict[str, str],
                 in_container: bool = False) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (spec.operator.get("variables") or {}).items()}
    env.update(spec.platform_env)
    # PDL `services` (engine/services.py): each connection is an environment variable; a volume is
    # seen at its PDL path in a container (mounted there), at its directory by a local process.
    for conn in spec.connections:
        env[conn.name] = conn.path if conn.kind == "volume" and in_container else conn.value
    env.update({
        "NVIDIA_CLARA_JOB_ID": spec.job_id,
        "NVIDIA_CLARA_JOB_NAME": spec.job_name,
        "NVIDIA_CLARA_PIPELINE_NAME": spec.pipeline_name,
        "NVIDIA_CLARA_OPERATOR_NAME": spec.operator["name"],
        "NVIDIA_CLARA_PAYLOAD_PATH": str(spec.payload),
        "NVIDIA_CLARA_INPUT_PATHS": json.dumps(inputs),
        "NVIDIA_CLARA_OUTPUT_PATHS": json.dumps(outputs),
    })
    return env


def kill_tree(pid: int, grace: float = 3.0) -> None:
    """SIGTERM the process group and every descendant, SIGKILL what is left after `grace` s."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        pgid = None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if pgid is not None:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _gone, alive = psutil.wait_procs(procs, timeout=grace if sig == signal.SIGTERM else 5)
        procs = alive
        if not procs and pgid is not None and not _group_alive(pgid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class LocalProcess:
    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self) -> int:
        return self.popen.wait()

    def kill(self, grace: float = 3.0) -> None:
        kill_tree(self.pid, grace)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class LocalExecutor:
    """Operators as local processes (bundled / image-less) or containers (podman/docker)."""

    def __init__(self, runtimes: tuple[str, ...] = CONTAINER_RUNTIMES, search_path: str | None = None) -> None:
        self.runtimes = runtimes
        self.search_path = search_path

    def is_local(self, op: dict[str, Any]) -> bool:
        return is_bundled(op)

    def container_runtime(self) -> str | None:
        for name in self.runtimes:
            found = shutil.which(name, path=self.search_path)
            if found:
                return found
        return None

    def command(self, spec: OperatorSpec) -> tuple[list[str], dict[str, str]]:
        op = spec.operator
        container = op.get("container") or {}
        command = [str(c) for c in container.get("command") or []]
        if self.is_local(op):
            if not command:
                raise ExecutorError(
                    f"operator {op['name']!r}: no container.command; a local operator needs one "
                    f"(e.g. python -m claractl_operators.<module>)")
            mapping = {**spec.io.inputs, **spec.io.outputs}
            argv = [rewrite_arg(a, mapping) for a in command]
            if argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            env = operator_env(spec, {k: str(v) for k, v in spec.io.inputs.items()},
                               {k: str(v) for k, v in spec.io.outputs.items()})
            return argv, {**os.environ, **env}
        runtime = self.container_runtime()
        image = str(container["image"]) + (f":{container['tag']}" if container.get("tag") else "")
        if runtime is None:
            raise ExecutorError(
                f"operator {op['name']!r} uses container image {image!r}, which needs podman or docker; "
                f"neither is installed on this machine")
        inputs = {k: k for k in spec.io.inputs}
        outputs = {k: k for k in spec.io.outputs}
        env = operator_env(spec, inputs, outputs, in_container=True)
        env["NVIDIA_CLARA_PAYLOAD_PATH"] = "/payload"
        argv = [runtime, "run", "--rm", "--network", "host",
                "--name", f"clara-{spec.job_id[:8]}-{op['name']}"[:63]]
        for pdl, host in spec.io.inputs.items():
            argv += ["-v", f"{host}:{pdl}:ro"]
        for pdl, host in spec.io.outputs.items():
            argv += ["-v", f"{host}:{pdl}"]
        for conn in spec.connections:
            if conn.kind == "volume":
                argv += ["-v", f"{conn.value}:{conn.path}"]
        for key in env:
            argv += ["-e", key]
        argv.append(image)
        argv += command
        return argv, {**os.environ, **env}

    def start(self, spec: OperatorSpec) -> LocalProcess:
        argv, env = self.command(spec)
        for out in spec.io.outputs.values():
            out.mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} operator {spec.operator['name']} starts\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    argv, env=env, cwd=str(spec.payload), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                raise ExecutorError(f"operator {spec.operator['name']!r}: cannot run {argv[0]!r}: {exc.strerror}") from exc
        return LocalProcess(popen)
