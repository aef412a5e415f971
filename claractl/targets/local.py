"""The local target: the embedded platform on this machine, reached only through its HTTP API.

Services are the platform's components with their settings (PlatformConfig, written to
`<state-dir>/platform.json`); models, pipelines, AE titles, sources and destinations are
reconciled through `/api/v1` with `owner` = the project name. The platform is the target, so
reading the state starts it when it is not running (with its last applied settings, or the
project's on first use): there is no other place to read the state from.
"""

from __future__ import annotations

import io
import logging
import tarfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from claractl.plan import ActualObject, ActualState, ApplyResult, Change, Resource, TargetError
from claractl.plan import address as addr
from claractl.plan.model import DELETE, REPLACE
from claractl.plan.secrets import plain
from claractl.platform.config import PlatformConfig
from claractl.project.model import Project
from claractl.targets.base import LockHeld, LockInfo, Target

log = logging.getLogger(__name__)

# Project service key path → (PlatformConfig section, attribute). Keys not listed (triton image
# and gpus) only mean something on Kubernetes and are not managed here.
SERVICE_KEYS: dict[str, dict[str, tuple[str, str]]] = {
    "platform": {
        "api-host": ("api", "host"), "api-port": ("api", "port"), "api-token": ("api", "token"),
        "workers": ("api", "workers"), "database": ("store", "database"),
        "job-timeout": ("engine", "job_timeout"), "payload-retention": ("engine", "payload_retention"),
    },
    "dicom-adapter": {
        "enabled": ("dicom", "enabled"), "host": ("dicom", "host"), "port": ("dicom", "port"),
        "ae-title": ("dicom", "ae_title"), "max-associations": ("dicom", "max_associations"),
        "reject-unknown-sources": ("dicom", "reject_unknown_sources"),
        "storage.watermark-percent": ("dicom", "watermark_percent"), "storage.reserve-mb": ("dicom", "reserve_mb"),
    },
    "triton": {
        "enabled": ("inference", "enabled"), "http-port": ("inference", "http_port"),
        "grpc-port": ("inference", "grpc_port"), "url": ("inference", "url"),
    },
    "render": {"enabled": ("render", "enabled"), "port": ("render", "port")},
}
# The API redacts the token, so it cannot be compared; it is written on every service update.
WRITE_ONLY = {"platform": ("api-token",)}
# Which platform component runs each service (for restarting only what changed).
COMPONENT = {"platform": "api", "dicom-adapter": "dicom", "triton": "inference", "render": "render"}

MODEL_LOAD_TIMEOUT = 300.0
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


def model_archive(model_dir: Path) -> bytes:
    """The model directory as tar.gz with paths relative to it (what PUT /models/{name} takes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    return buf.getvalue()


def _items(data: Any, key: str) -> list[dict[str, Any]]:
    """Accept both a bare JSON list and {"<key>": [...]} / {"items": [...]}."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for k in (key, "items"):
            if isinstance(data.get(k), list):
                return data[k]
    raise TargetError(f"unexpected response listing {key}: {str(data)[:200]}")


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
    except ValueError:
        return resp.text[:300]


class LocalTarget(Target):
    type = "local"

    def __init__(self, project: Project) -> None:
        super().__init__(project)
        state_dir = project.target.local.get("state-dir", ".clara")
        self.state_dir = (project.root / state_dir).resolve()
        self._service_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_url = ""
        self._stopped = False

    # ---- plumbing -------------------------------------------------------------------------

    def config(self) -> PlatformConfig:
        return PlatformConfig.load(self.state_dir)

    def client(self) -> httpx.Client:
        config = self.config()
        url = config.api_url + "/api/v1"
        if self._client is None or self._client_url != url:
            token = platform_process.token(self.state_dir)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._client = httpx.Client(base_url=url, headers=headers, timeout=60.0)
            self._client_url = url
        return self._client

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 204), **kw: Any) -> httpx.Response:
        try:
            resp = self.client().request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise TargetError(f"platform API at {self._client_url} is not reachable: {exc}") from None
        if resp.status_code not in ok:
            raise TargetError(f"{method} {path}: HTTP {resp.status_code}: {_detail(resp)}")
        return resp

    def ensure_running(self, notes: list[str] | None = None) -> None:
        """Start the platform when it is not running: last applied settings, or the project's."""
        if platform_process.is_ready(self.config()):
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
        config = self._call("GET", "/config").json()
        for name, fields in services_from_config(config).items():
            state.add(ActualObject(addr.make("service", name), fields, owner))
        for m in _items(self._call("GET", "/models").json(), "models"):
            state.add(ActualObject(addr.make("model", m["name"]),
                                   {"digest": m.get("digest"), "state": m.get("state")}, m.get("owner")))
        for p in _items(self._call("GET", "/pipelines").json(), "pipelines"):
            state.add(ActualObject(addr.make("pipeline", p["name"]),
                                   {"definition": p.get("definition"), "export": p.get("export") or []}, p.get("owner")))
        for a in _items(self._call("GET", "/ae-titles").json(), "ae_titles"):
            state.add(ActualObject(addr.make("ae-title", a["ae_title"]), {
                "pipelines": a.get("pipelines", []), "group-by": a.get("group_by"),
                "timeout": a.get("timeout"), "priority": a.get("priority"),
            }, a.get("owner")))
        for s in _items(self._call("GET", "/sources").json(), "sources"):
            state.add(ActualObject(addr.make("source", s["name"]),
                                   {"ae-title": s.get("ae_title"), "host": s.get("host")}, s.get("owner")))
        for d in _items(self._call("GET", "/destinations").json(), "destinations"):
            state.add(ActualObject(addr.make("destination", d["name"]),
                                   {"ae-title": d.get("ae_title"), "host": d.get("host"), "port": d.get("port")},
                                   d.get("owner")))
        return state

    def apply_change(self, change: Change, desired: Resource | None) -> None:
        kind, name = addr.split(change.address)
        if change.action != DELETE and desired is None:
            raise TargetError(f"{change.address}: not in the project any more")
        if kind == "service":
            return self._apply_service(name, change, desired)
        if change.action == REPLACE and change.actual_name:
            self._delete(kind, change.actual_name)
        if change.action == DELETE:
            return self._delete(kind, name)
        assert desired is not None
        getattr(self, "_put_" + kind.replace("-", "_"))(name, desired)

    def _apply_service(self, name: str, change: Change, desired: Resource | None) -> None:
        with self._service_lock:   # all services share one platform.json
            if change.action == DELETE:
                # Destroy: stop the platform once its services are gone; its data stays on disk.
                if not self._stopped:
                    platform_process.stop(self.state_dir)
                    self._stopped = True
                return
            assert desired is not None
            before = self.config()
            after = config_with_services(before, {name: desired.fields})
            after.save()
            if not platform_process.is_ready(before):
                platform_process.start(self.state_dir, timeout=READY_TIMEOUT)
                return
            changed = before.to_dict(redact=False) != after.to_dict(redact=False)
            if changed:
                platform_process.restart_component(self.state_dir, before, after, COMPONENT[name],
                                                   timeout=READY_TIMEOUT)

    def _delete(self, kind: str, name: str) -> None:
        path = {"model": "models", "pipeline": "pipelines", "ae-title": "ae-titles",
                "source": "sources", "destination": "destinations"}[kind]
        self._call("DELETE", f"/{path}/{quote(name, safe='')}", ok=(200, 202, 204, 404))

    def _put_model(self, name: str, desired: Resource) -> None:
        model_dir = next(m.path for m in self.project.models if m.name == name)
        n = quote(name, safe="")
        model = self._call("PUT", f"/models/{n}", params={"owner": self.project.name},
                           content=model_archive(model_dir), headers={"Content-Type": "application/gzip"}).json()
        if "state" not in desired.fields:          # inference disabled: nothing to load
            return
        if model.get("state") != "LOADED":
            self._call("POST", f"/models/{n}/load", ok=(200, 422))
        deadline = time.monotonic() + MODEL_LOAD_TIMEOUT
        while True:
            model = self._call("GET", f"/models/{n}").json()
            if model.get("state") == "LOADED":
                return
            if model.get("state") == "FAILED":
                raise TargetError(f"model {name} failed to load: {model.get('message') or 'no message'}")
            if time.monotonic() > deadline:
                raise TargetError(f"model {name} not LOADED after {MODEL_LOAD_TIMEOUT:.0f} s (state {model.get('state')})")
            time.sleep(0.2)

    def _put_pipeline(self, name: str, desired: Resource) -> None:
        ref = next(p for p in self.project.pipelines if p.name == name)
        self._call("PUT", f"/pipelines/{quote(name, safe='')}",
                   json={"definition_text": ref.definition_text, "export": plain(ref.export), "owner": self.project.name})

    def _put_ae_title(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self._call("PUT", f"/ae-titles/{quote(name, safe='')}", json={
            "pipelines": f["pipelines"], "group_by": f["group-by"], "timeout": f["timeout"],
            "priority": f["priority"], "owner": self.project.name})

    def _put_source(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self._call("PUT", f"/sources/{quote(name, safe='')}",
                   json={"ae_title": f["ae-title"], "host": f["host"], "owner": self.project.name})

    def _put_destination(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self._call("PUT", f"/destinations/{quote(name, safe='')}",
                   json={"ae_title": f["ae-title"], "host": f["host"], "port": f["port"], "owner": self.project.name})

    def after_apply(self, result: ApplyResult) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ---- lock -----------------------------------------------------------------------------

    def _lock_path(self) -> str:
        return f"/locks/{quote(self.scope, safe='/')}"

    def acquire_lock(self, holder: str) -> LockInfo:
        self.ensure_running()
        resp = self._call("POST", self._lock_path(), ok=(200, 201, 409), json={"holder": holder})
        info = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        created = _parse_time(info.get("created_at"))
        if created is None and isinstance(info.get("age_seconds"), (int, float)):
            created = datetime.now(timezone.utc) - timedelta(seconds=info["age_seconds"])
        lock = LockInfo(str(info.get("lock_id", "?")), str(info.get("holder", "unknown")), created)
        if resp.status_code == 409:
            if "holder" not in info:          # released concurrently: try again
                raise LockHeld(LockInfo("?", "an apply that just finished", None))
            raise LockHeld(lock)
        return lock

    def release_lock(self, lock: LockInfo) -> None:
        try:
            self._call("DELETE", self._lock_path(), ok=(200, 204, 404), params={"lock_id": lock.lock_id})
        except TargetError as exc:   # e.g. a destroy stopped the platform: the lock went with it
            log.info("apply lock not released: %s", exc)

    def force_unlock(self, lock_id: str) -> None:
        resp = self._call("DELETE", self._lock_path(), ok=(200, 204, 404, 409), params={"lock_id": lock_id, "force": "true"})
        if resp.status_code != 200 and resp.status_code != 204:
            raise TargetError(f"no apply lock {lock_id} on {self.scope}: {_detail(resp)}")


class _PlatformProcess:
    """Glue to the platform runtime's background process management (claractl.platform.server)."""

    @staticmethod
    def is_ready(config: PlatformConfig) -> bool:
        from claractl.platform import server

        if not server.is_running(config.root):
            return False
        try:
            return httpx.get(config.api_url + "/health/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def start(state_dir: Path, timeout: float) -> None:
        from claractl.platform import server

        try:
            server.start_background(str(state_dir), timeout=timeout)
        except server.PlatformError as exc:
            raise TargetError(f"cannot start the local platform: {exc}") from None

    @staticmethod
    def stop(state_dir: Path) -> None:
        from claractl.platform import server

        server.stop_background(str(state_dir))

    @staticmethod
    def token(state_dir: Path) -> str | None:
        from claractl.platform import server

        return server.api_token(str(state_dir))

    @classmethod
    def restart_component(cls, state_dir: Path, before: PlatformConfig, after: PlatformConfig,
                          component: str, timeout: float) -> None:
        # The runtime has no per-component restart yet: restart the process (jobs survive a
        # restart: running ones are re-run or marked EVICTED by the engine).
        cls.stop(state_dir)
        cls.start(state_dir, timeout=timeout)


platform_process = _PlatformProcess


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
