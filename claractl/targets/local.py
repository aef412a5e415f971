"""The local target: the embedded platform on this machine, reached only through its HTTP API.

Services are the platform's components with their settings (PlatformConfig, written to
`<state-dir>/platform.json`); models, pipelines, AE titles, sources and destinations are
reconciled through `/api/v1` with `owner` = the project name. The platform is the target, so
reading the state starts it when it is not running (with its last applied settings, or the
project's on first use): there is no other place to read the state from.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from claractl.plan import ActualObject, ActualState, ApplyResult, Change, PlanError, Resource, TargetError
from claractl.plan import address as addr
from claractl.plan.diff import field_diffs
from claractl.plan.model import CREATE, DELETE, UPDATE
from claractl.plan.secrets import plain
from claractl.platform.bundled import is_bundled
from claractl.platform.client import ApiError, PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.pdl_services import inference_mapped, operator_services
from claractl.platform.reload import effect_of_keys
from claractl.project.model import Project
from claractl.targets.base import LockHeld, LockInfo, Target
from claractl.targets.platform_objects import PlatformObjects

log = logging.getLogger(__name__)

# Project service key path → (PlatformConfig section, attribute). Keys not listed (triton image
# and gpus) only mean something on Kubernetes and are not managed here.
SERVICE_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "platform": {
        "api-host": ("api", "host"), "api-port": ("api", "port"), "grpc-port": ("api", "grpc_port"),
        "api-token": ("api", "token"),
        "audit.syslog": ("audit", "syslog"), "audit.ca-certificates": ("audit", "syslog_ca_certificates"),
        "audit.certificate": ("audit", "syslog_certificate"), "audit.private-key": ("audit", "syslog_private_key"),
        "audit.source-id": ("audit", "source_id"), "audit.site-id": ("audit", "site_id"),
        "workers": ("api", "workers"), "database": ("store", "database"),
        "job-timeout": ("engine", "job_timeout"), "payload-retention": ("engine", "payload_retention"),
        "service-idle": ("engine", "service_idle"),
    },
    "dicom-adapter": {
        "enabled": ("dicom", "enabled"), "host": ("dicom", "host"), "port": ("dicom", "port"),
        "ae-title": ("dicom", "ae_title"), "max-associations": ("dicom", "max_associations"),
        "reject-unknown-sources": ("dicom", "reject_unknown_sources"),
        "storage.watermark-percent": ("dicom", "watermark_percent"), "storage.reserve-mb": ("dicom", "reserve_mb"),
        "storage.spool-segment-mb": ("dicom", "spool_segment_mb"),
        "tls.port": ("dicom", "tls_port"), "tls.certificate": ("dicom", "tls_certificate"),
        "tls.private-key": ("dicom", "tls_private_key"),
        "tls.private-key-password": ("dicom", "tls_private_key_password"),
        "tls.ca-certificates": ("dicom", "tls_ca_certificates"), "tls.verify-clients": ("dicom", "tls_verify_clients"),
    },
    "triton": {
        "enabled": ("inference", "enabled"), "http-port": ("inference", "http_port"),
        "grpc-port": ("inference", "grpc_port"), "url": ("inference", "url"),
    },
    "render": {"enabled": ("render", "enabled"), "port": ("render", "port")},
}
# The API redacts the token, so it cannot be compared; it is written on every service update.
WRITE_ONLY = {"platform": ("api-token",)}
# Settings GET /config redacts inside a compared section: the values this target saved in
# platform.json (what the platform runs with) stand in for them.
REDACTED_SETTINGS = (("dicom", "tls_private_key_password"),)

READY_TIMEOUT = 60.0


def _get_path(data: dict[str, Any], dotted: str) -> Any:
    cur: Any = data
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return KeyError
        cur = cur[part]
    return cur


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


def service_fields(project: Project) -> dict[str, dict[str, Any]]:
    """The service settings the local target manages, in the project file's shape."""
    out: dict[str, dict[str, Any]] = {}
    for name, settings in project.services.items():
        keys = SERVICE_KEYS.get(name)
        if keys is None:
            continue
        fields: dict[str, Any] = {}
        for dotted in keys:
            value = _get_path(settings, dotted)
            if value is not KeyError:
                _set_path(fields, dotted, value)
        out[name] = fields
    return out


def config_with_services(config: PlatformConfig, services: dict[str, dict[str, Any]]) -> PlatformConfig:
    """A copy of `config` with the given services' settings written in (real secret values)."""
    data = config.to_dict(redact=False)
    for name, fields in services.items():
        for dotted, (section, attr) in SERVICE_KEYS.get(name, {}).items():
            value = _get_path(fields, dotted)
            if value is not KeyError:
                data[section][attr] = plain(value)
    return PlatformConfig.from_dict(data)


def services_from_config(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Running settings (GET /config) back in the project file's shape."""
    out: dict[str, dict[str, Any]] = {}
    for name, keys in SERVICE_KEYS.items():
        fields: dict[str, Any] = {}
        for dotted, (section, attr) in keys.items():
            if attr in config.get(section, {}):
                _set_path(fields, dotted, config[section][attr])
        out[name] = fields
    return out


class LocalTarget(PlatformObjects, Target):
    type = "local"

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        state_dir = project.target.local.get("state-dir", ".clara")
        self.state_dir = (project.root / state_dir).resolve()
        self._service_lock = threading.Lock()
        self._client: PlatformClient | None = None
        self._stopped = False

    # ---- plumbing -------------------------------------------------------------------------

    def config(self) -> PlatformConfig:
        return PlatformConfig.load(self.state_dir)

    def client(self) -> PlatformClient:
        """A client for the platform's current address (an applied api-port change moves it)."""
        url = self.config().api_url
        if self._client is None or self._client.base_url != url:
            # Plain HTTP on this machine: skip loading the CA bundle (~70 ms per client).
            transport = httpx.HTTPTransport(verify=False) if url.startswith("http://") else None
            self._client = PlatformClient(url, token=platform_process.token(self.state_dir), timeout=60.0,
                                          transport=transport)
        return self._client

    def is_ready(self) -> bool:
        if not platform_process.is_running(self.state_dir):
            return False
        try:
            return self.client().health_ready()["http_status"] == 200
        except (ApiError, ValueError):
            return False

    def ensure_running(self, notes: list[str] | None = None) -> None:
        """Start the platform when it is not running: last applied settings, or the project's."""
        if self.is_ready():
            return
        if not (self.state_dir / "platform.json").exists():
            config = config_with_services(PlatformConfig(state_dir=str(self.state_dir)), self.service_fields(self.project))
            config.save()
            why = "first use: started it with the project's settings"
        else:
            why = "started it with its last applied settings"
        platform_process.start(self.state_dir, timeout=READY_TIMEOUT)
        if notes is not None:
            notes.append(f"the local platform (state dir {self.state_dir}) was not running; {why}")

    # ---- Target ---------------------------------------------------------------------------

    def service_fields(self, project: Project) -> dict[str, dict[str, Any]]:
        return service_fields(project)

    def desired(self) -> dict[str, Resource]:
        out = super().desired()
        for name, keys in WRITE_ONLY.items():
            res = out.get(addr.make("service", name))
            if res is not None:
                res.informational = tuple(k for k in keys if k in res.fields)
        return out

    def read_state(self) -> ActualState:
        state = ActualState()
        self.ensure_running(state.notes)
        owner = self.project.name
        config = self._with_saved_secrets(self.api("get_config"))
        for name, fields in services_from_config(config).items():
            state.add(ActualObject(addr.make("service", name), fields, owner))
        self.read_platform_objects(state)
        return state

    def apply_change(self, change: Change, desired: Resource | None) -> None:
        kind, name = addr.split(change.address)
        if change.action != DELETE and desired is None:
            raise TargetError(f"{change.address}: not in the project any more")
        if kind == "service":
            return self._apply_service(name, change, desired)
        self.apply_platform_change(kind, name, change, desired)

    def _apply_service(self, name: str, change: Change, desired: Resource | None) -> None:
        with self._service_lock:   # all services share one platform.json
            if change.action == DELETE:
                # Destroy: stop the platform once its services are gone; its data stays on disk.
                if not self._stopped:
                    platform_process.stop(self.state_dir)
                    self._stopped = True
                return
            assert desired is not None
            was_ready = self.is_ready()
            running = (services_from_config(self._with_saved_secrets(self.api("get_config"))).get(name, {})
                       if was_ready else {})
            # The running platform's address and token: an api-port or token change in the new
            # platform.json must not redirect the reload request.
            client = self.client() if was_ready else None
            after = config_with_services(self.config(), {name: desired.fields})
            after.save()
            if client is None:
                platform_process.start(self.state_dir, timeout=READY_TIMEOUT)
                return
            # Apply only when the running settings differ (the token is write-only: not compared).
            compared = {k: v for k, v in desired.fields.items() if k not in desired.informational}
            if field_diffs({k: running.get(k) for k in compared}, compared):
                platform_process.reload(self.state_dir, client, timeout=READY_TIMEOUT)

    def _with_saved_secrets(self, running: dict[str, Any]) -> dict[str, Any]:
        saved = self.config().to_dict(redact=False)
        for section, attr in REDACTED_SETTINGS:
            if running.get(section, {}).get(attr) == "(sensitive)":
                running[section][attr] = saved[section][attr]
        return running

    def check(self) -> None:
        """Operators and PDL services run as local processes here; any image but a bundled one needs
        podman or docker (Triton/TRTIS services are not started: they map to the inference service)."""
        problems = [
            f"{pipeline.file}: operator {op['name']!r} uses container image {op['container']['image']!r}, "
            "which the local target runs through podman or docker; neither is installed"
            for pipeline in self.project.pipelines
            for op in pipeline.definition.get("operators") or []
            if not is_bundled(op)
        ] + [
            f"{pipeline.file}: service {svc.name!r} of operator {op_name!r} uses container image {svc.image_ref!r}, "
            "which the local target runs through podman or docker; neither is installed"
            for pipeline in self.project.pipelines
            for op_name, services in operator_services(pipeline.definition).items()
            for svc in services if not svc.is_inference and not is_bundled({"container": {"image": svc.image}})
        ]
        if not problems:
            return
        from claractl.platform.engine.executor import LocalExecutor   # the engine: only when an image needs it

        if not LocalExecutor().container_runtime():
            raise PlanError("\n".join(problems))

    def refine(self, change: Change) -> None:
        """A pipeline whose TRTIS/Triton services map to the inference service says so."""
        super().refine(change)
        kind, name = addr.split(change.address)
        if kind == "pipeline" and change.action in (CREATE, UPDATE) and not change.reason:
            ref = next((p for p in self.project.pipelines if p.name == name), None)
            mapped = inference_mapped(ref.definition) if ref else []
            if mapped:
                change.reason = "; ".join(f"service {s.name!r} ({s.image_ref}) is not started: its connections "
                                          "point at the inference service" for s in mapped)

    def change_note(self, change: Change) -> str | None:
        """Which platform components an update of a service restarts (see POST /config/reload)."""
        kind, name = addr.split(change.address)
        keys = SERVICE_KEYS.get(name, {}) if kind == "service" else {}
        changed = [".".join(keys[d.path]) for d in change.diffs if d.path in keys]
        return (effect_of_keys(changed).describe() or None) if changed else None

    def after_apply(self, result: ApplyResult) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- lock -----------------------------------------------------------------------------

    def acquire_lock(self, holder: str) -> LockInfo:
        self.ensure_running()
        try:
            info = self.client().acquire_lock(self.scope, holder)
        except ApiError as exc:
            if exc.status != 409:
                raise TargetError(f"platform API (acquire lock {self.scope}): {exc.detail}") from None
            body = exc.body
            if "holder" not in body:          # released concurrently: the caller tries again
                raise LockHeld(LockInfo("?", "an apply that just finished", None)) from None
            age = body.get("age_seconds")
            created = datetime.now(timezone.utc) - timedelta(seconds=age) if isinstance(age, (int, float)) else None
            raise LockHeld(LockInfo(str(body.get("lock_id", "?")), str(body["holder"]), created)) from None
        return LockInfo(str(info["lock_id"]), str(info["holder"]), _parse_time(info.get("created_at")))

    def release_lock(self, lock: LockInfo) -> None:
        try:
            self.client().release_lock(self.scope, lock_id=lock.lock_id)
        except ApiError as exc:   # e.g. a destroy stopped the platform: the lock went with it
            log.info("apply lock not released: %s", exc)

    def force_unlock(self, lock_id: str) -> None:
        self.ensure_running()
        try:
            current = self.client().get_lock(self.scope)
        except ApiError as exc:
            raise TargetError(f"no apply lock is held on {self.scope}" if exc.status == 404 else str(exc)) from None
        if current.get("lock_id") != lock_id:
            raise TargetError(f"lock {lock_id} does not hold {self.scope}; it is held by "
                              f"{current.get('holder')} (lock ID {current.get('lock_id')})")
        self.api("release_lock", self.scope, force=True)


class _PlatformProcess:
    """Glue to the platform runtime's background process management (claractl.platform.process)."""

    @staticmethod
    def is_running(state_dir: Path) -> bool:
        from claractl.platform import process

        return process.is_running(state_dir)

    @staticmethod
    def start(state_dir: Path, timeout: float) -> None:
        from claractl.platform import process
        from claractl.platform.errors import PlatformError

        try:
            process.start_background(str(state_dir), timeout=timeout)
        except PlatformError as exc:
            raise TargetError(f"cannot start the local platform: {exc}") from None

    @staticmethod
    def stop(state_dir: Path) -> None:
        from claractl.platform import process

        process.stop_background(str(state_dir))

    @staticmethod
    def token(state_dir: Path) -> str | None:
        from claractl.platform import process

        return process.api_token(str(state_dir))

    @classmethod
    def reload(cls, state_dir: Path, client: PlatformClient, timeout: float) -> dict:
        """Have the running platform apply platform.json, restarting only the changed components;
        restart the whole process when the platform says it must (API address, database)."""
        try:
            result = client.reload_config()
        except ApiError as exc:
            if exc.status not in (404, 405):
                raise TargetError(f"the platform could not apply the new settings: {exc.detail}") from None
            result = {"restart_required": True}     # a platform from before /config/reload
        if result.get("restart_required"):
            # Jobs survive a restart: running ones are re-run or marked EVICTED by the engine.
            cls.stop(state_dir)
            cls.start(state_dir, timeout=timeout)
            return result
        deadline = time.monotonic() + timeout
        while client.health_ready()["http_status"] != 200:
            if time.monotonic() > deadline:
                raise TargetError(f"the platform is not ready {timeout:.0f} s after applying new settings "
                                  f"({result.get('summary')})")
            time.sleep(0.1)
        return result


platform_process = _PlatformProcess



def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
