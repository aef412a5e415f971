"""Pipeline services (PDL `services`, e.g. a model server an operator talks to): started for the
jobs that need them, shared, stopped when idle.

    manager = ServiceManager(config, LocalServiceLauncher())
    connections = manager.acquire(job_id, definition, platform_env)   # op name → [Connection]
    …  operators run with their connections in the environment …
    manager.release(job_id)          # the service keeps running `engine.service_idle` s more
    manager.sweep()                  # the engine's loop: stop services idle longer than that

As in Clara: a service is known by its container (image, tag, command) — and here its
variables — so jobs needing the same one share one instance; every service a job's operators
declare is running and ready before the job's first operator starts; each `connections.http`
entry gives the operator an environment variable holding the service's `host:port[path]`, each
`connections.volume` entry one holding a directory the service and the operator share. A
TRTIS/Triton service is never started: its http connections point at the platform's inference
service (claractl.platform.pdl_services).

Launchers: local (this module: a process, or a podman/docker container on the host network) and
kubernetes (kubernetes_services.py: a Deployment + Service owned by the platform).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from claractl.platform.bundled import BUNDLED_PREFIX
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.executor import CONTAINER_RUNTIMES, kill_tree
from claractl.platform.pdl_services import ServiceDecl, operator_services

log = logging.getLogger("claractl.engine")
READY_TIMEOUT = 120.0
SERVICE_DATA_PATH = "NVIDIA_CLARA_SERVICE_DATA_PATH"     # Clara's common (read-only) service volume
CONTAINER_SERVICE_DATA = "/clara/service-data"
_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class ServiceError(Exception):
    """A service could not be started or did not become ready; the message says which and why."""


@dataclass(frozen=True)
class Connection:
    """What an operator gets from a service: environment variable `name` = `value` (a process on
    this machine) or = `path` with `value` mounted there (a container)."""
    name: str
    kind: str               # "http" | "volume"
    value: str              # http: host:port[path]; volume: the shared directory
    path: str = ""          # volume: where containers see it


class ServiceHandle(Protocol):
    def wait_ready(self, timeout: float) -> None: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...
    def connections(self) -> list[Connection]: ...
    def describe(self) -> dict[str, Any]: ...


class ServiceLauncher(Protocol):
    def start(self, decl: ServiceDecl, instance: str, data_dir: Path, service_data: Path,
              log_path: Path) -> ServiceHandle: ...


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` in a command (Clara's TRTIS example uses $(NVIDIA_CLARA_SERVICE_DATA_PATH))."""
    return _K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), arg)


# -- local launcher ------------------------------------------------------------------------------
class LocalService:
    def __init__(self, decl: ServiceDecl, popen: subprocess.Popen, volumes: dict[str, Path], log_path: Path) -> None:
        self.decl, self.popen, self.volumes, self.log_path = decl, popen, volumes, log_path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, timeout: float) -> None:
        """Ready when every http port accepts connections (at once when it declares none)."""
        deadline = time.monotonic() + timeout
        for _name, port, _path in self.decl.http:
            while True:
                if not self.alive():
                    raise ServiceError(f"exited with code {self.popen.returncode} before it was ready "
                                       f"(log: {self.log_path})")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise ServiceError(f"port {port} did not accept connections within {timeout:g} s "
                                           f"(log: {self.log_path})") from None
                    time.sleep(0.1)

    def stop(self) -> None:
        kill_tree(self.popen.pid, grace=3.0)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def connections(self) -> list[Connection]:
        conns = [Connection(name, "http", f"127.0.0.1:{port}{path}") for name, port, path in self.decl.http]
        conns += [Connection(name, "volume", str(self.volumes[name]), path) for name, path in self.decl.volumes]
        return conns

    def describe(self) -> dict[str, Any]:
        return {"pid": self.popen.pid, "log": str(self.log_path)}


class LocalServiceLauncher:
    """A service runs as a process of this machine when its image is bundled (`claractl/…`) or
    absent, else through podman or docker (`--network host`), like operators."""

    def __init__(self, runtimes: tuple[str, ...] = CONTAINER_RUNTIMES, search_path: str | None = None) -> None:
        self.runtimes, self.search_path = runtimes, search_path

    def start(self, decl: ServiceDecl, instance: str, data_dir: Path, service_data: Path,
              log_path: Path) -> LocalService:
        volumes = {name: data_dir / name for name, _path in decl.volumes}
        for d in volumes.values():
            d.mkdir(parents=True, exist_ok=True)
        bundled = not decl.image or decl.image.startswith(BUNDLED_PREFIX)
        env = {**dict(decl.variables), SERVICE_DATA_PATH: str(service_data) if bundled else CONTAINER_SERVICE_DATA}
        if bundled:
            env.update({name: str(d) for name, d in volumes.items()})
            argv = [expand(a, env) for a in decl.command]
            if not argv:
                raise ServiceError("no container.command; a local service needs one")
            if argv[0] in ("python", "python3"):
                argv[0] = sys.executable
        else:
            runtime = next((found for name in self.runtimes if (found := shutil.which(name, path=self.search_path))),
                           None)
            if runtime is None:
                raise ServiceError(f"its container image {decl.image_ref!r} needs podman or docker; neither is "
                                   "installed on this machine")
            env.update({name: path for name, path in decl.volumes})
            argv = [runtime, "run", "--rm", "--network", "host", "--name", f"clara-svc-{instance}"[:63],
                    "-v", f"{service_data}:{CONTAINER_SERVICE_DATA}:ro"]
            argv += [x for name, path in decl.volumes for x in ("-v", f"{volumes[name]}:{path}")]
            argv += [x for key in env for x in ("-e", key)]
            argv += [decl.image_ref, *(expand(a, env) for a in decl.command)]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} service {decl.name} starts\n".encode())
            out.flush()
            try:
                popen = subprocess.Popen(argv, env={**os.environ, **env}, cwd=str(data_dir), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise ServiceError(f"cannot run {argv[0]!r}: {exc.strerror}") from exc
        return LocalService(decl, popen, volumes, log_path)


# -- the manager ---------------------------------------------------------------------------------
@dataclass
class _Instance:
    decl: ServiceDecl
    handle: ServiceHandle
    users: set[str]
    idle_since: float | None = None


class ServiceManager:
    def __init__(self, config: PlatformConfig, launcher: ServiceLauncher, ready_timeout: float = READY_TIMEOUT) -> None:
        self.config = config
        self.launcher = launcher
        self.ready_timeout = ready_timeout
        self._lock = threading.Lock()
        self._starting: dict[str, threading.Lock] = {}
        self._instances: dict[str, _Instance] = {}

    @property
    def idle_stop_after(self) -> float:
        return float(self.config.engine.service_idle)

    def acquire(self, job_id: str, definition: dict[str, Any], platform_env: dict[str, str]) -> dict[str, list[Connection]]:
        """Start (or join) every service the job's operators declare; their connections per operator.
        On a failure the services this call joined are released and ServiceError names the service."""
        out: dict[str, list[Connection]] = {}
        try:
            for op_name, decls in operator_services(definition).items():
                conns: list[Connection] = []
                for decl in decls:
                    if decl.is_inference:
                        uri = platform_env.get("NVIDIA_TRITON_HTTPURI", "")
                        conns += [Connection(name, "http", uri) for name, _port, _path in decl.http if uri]
                        continue
                    try:
                        conns += self._join(decl, job_id).connections()
                    except ServiceError as exc:
                        raise ServiceError(f"service {decl.name!r} of operator {op_name!r} ({decl.image_ref or 'no image'}) "
                                           f"could not start: {exc}") from None
                out[op_name] = conns
        except BaseException:
            self.release(job_id)
            raise
        return out

    def _join(self, decl: ServiceDecl, job_id: str) -> ServiceHandle:
        with self._lock:
            gate = self._starting.setdefault(decl.key, threading.Lock())
        with gate:                                   # one start at a time per service; others wait for it
            with self._lock:
                inst = self._instances.get(decl.key)
                if inst is not None and inst.handle.alive():
                    inst.users.add(job_id)
                    inst.idle_since = None
                    return inst.handle
                if inst is not None:                 # died: start it again
                    log.warning("service %s (%s) had stopped; starting it again", decl.name, decl.key)
                    del self._instances[decl.key]
            instance = f"{decl.name}-{decl.key}"
            data_dir = self.config.root / "services" / instance
            data_dir.mkdir(parents=True, exist_ok=True)
            handle = self.launcher.start(decl, instance, data_dir, self.config.root,
                                         self.config.logs_dir / "services" / f"{instance}.log")
            try:
                handle.wait_ready(self.ready_timeout)
            except BaseException:
                handle.stop()
                raise
            log.info("service %s started (%s)", instance, decl.image_ref or "local process")
            with self._lock:
                self._instances[decl.key] = _Instance(decl, handle, {job_id})
            return handle

    def release(self, job_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            for inst in self._instances.values():
                if job_id in inst.users:
                    inst.users.discard(job_id)
                    if not inst.users:
                        inst.idle_since = now

    def sweep(self) -> list[str]:
        """Stop services nobody used for `engine.service_idle` seconds; returns their names."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k, inst in self._instances.items()
                    if not inst.users and inst.idle_since is not None and now - inst.idle_since >= self.idle_stop_after]
            stopping = [self._instances.pop(k) for k in idle]
        for inst in stopping:
            inst.handle.stop()
            log.info("service %s-%s stopped (idle)", inst.decl.name, inst.decl.key)
        return [f"{i.decl.name}-{i.decl.key}" for i in stopping]

    def stop_all(self) -> None:
        with self._lock:
            stopping = list(self._instances.values())
            self._instances.clear()
        for inst in stopping:
            inst.handle.stop()

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"name": i.decl.name, "key": k, "image": i.decl.image_ref, "users": sorted(i.users),
                     "alive": i.handle.alive(), **i.handle.describe()} for k, i in self._instances.items()]


def launcher_for(config: PlatformConfig, executor: object | None = None) -> ServiceLauncher:
    if config.engine.executor == "kubernetes":
        from claractl.platform.engine.kubernetes_services import KubernetesServiceLauncher
        settings = getattr(executor, "settings", None)       # the Job executor's cluster settings, when given
        if settings is not None:
            return KubernetesServiceLauncher(settings, getattr(executor, "_rest", None))
        return KubernetesServiceLauncher.from_config(config)
    return LocalServiceLauncher()
