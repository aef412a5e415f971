"""Platform-level objects — models, pipelines, AE titles, sources, destinations — reconciled
through the platform's HTTP API, whichever way the API is reached (local: 127.0.0.1; kubernetes:
the API server's service proxy). Shared by every target; a target mixes `PlatformObjects` in and
provides `client()` (a PlatformClient) and `self.project`.
"""

from __future__ import annotations

import time
from typing import Any

from claractl.plan import ActualObject, ActualState, Change, Resource, TargetError
from claractl.plan import address as addr
from claractl.plan.model import DELETE, REPLACE
from claractl.plan.modelconfig import summary
from claractl.plan.secrets import plain
from claractl.platform.client import ApiError, PlatformClient

MODEL_LOAD_TIMEOUT = 300.0
PLATFORM_KINDS = ("model", "pipeline", "ae-title", "source", "destination")
EXPORT_DEFAULTS = {"max-attempts": 5, "from": None, "name": None}


def export_fields(entries: Any) -> list[dict[str, Any]]:
    """The API fills export defaults in; leave them out so they compare with the project's."""
    return [{k: v for k, v in e.items() if not (k in EXPORT_DEFAULTS and v == EXPORT_DEFAULTS[k])}
            for e in entries or []]


class PlatformObjects:
    """Read and write the platform-level objects of `self.project` through `self.client()`."""

    project: Any
    model_load_timeout: float = MODEL_LOAD_TIMEOUT

    def client(self) -> PlatformClient:   # provided by the target
        raise NotImplementedError

    def api(self, method: str, *args: Any, missing_ok: bool = False, **kw: Any) -> Any:
        """Call one PlatformClient method; API errors become TargetErrors that read well."""
        try:
            return getattr(self.client(), method)(*args, **kw)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return None
            raise TargetError(f"platform API ({method.replace('_', ' ')} {' '.join(map(str, args))}): "
                              f"{exc.detail if exc.status else exc}") from None

    def read_platform_objects(self, state: ActualState) -> None:
        for m in self.api("list_models"):
            state.add(ActualObject(addr.make("model", m["name"]), {
                "digest": m.get("digest"), "config": summary(m.get("config") or {}), "state": m.get("state"),
            }, m.get("owner"), clara_id=m.get("clara_id")))
        for p in self.api("list_pipelines"):
            state.add(ActualObject(addr.make("pipeline", p["name"]),
                                   {"definition": p.get("definition"), "export": export_fields(p.get("export"))},
                                   p.get("owner"), clara_id=p.get("clara_id")))
        for a in self.api("list_ae_titles"):
            state.add(ActualObject(addr.make("ae-title", a["ae_title"]), {
                "pipelines": a.get("pipelines", []), "group-by": a.get("group_by"),
                "timeout": a.get("timeout"), "priority": a.get("priority"),
            }, a.get("owner")))
        for s in self.api("list_sources"):
            state.add(ActualObject(addr.make("source", s["name"]),
                                   {"ae-title": s.get("ae_title"), "host": s.get("host")}, s.get("owner")))
        for d in self.api("list_destinations"):
            state.add(ActualObject(addr.make("destination", d["name"]),
                                   {"ae-title": d.get("ae_title"), "host": d.get("host"), "port": d.get("port"),
                                    **({"tls": True} if d.get("tls") else {})},
                                   d.get("owner")))

    def apply_platform_change(self, kind: str, name: str, change: Change, desired: Resource | None) -> None:
        if change.action == REPLACE and change.actual_name:
            self._delete(kind, change.actual_name)
        if change.action == DELETE:
            return self._delete(kind, name)
        assert desired is not None
        getattr(self, "_put_" + kind.replace("-", "_"))(name, desired)

    def _delete(self, kind: str, name: str) -> None:
        self.api("delete_" + kind.replace("-", "_"), name, missing_ok=True)

    def _put_model(self, name: str, desired: Resource) -> None:
        model_dir = next(m.path for m in self.project.models if m.name == name)
        model = self.api("put_model", name, model_dir, owner=self.project.name)
        if "state" not in desired.fields:          # inference disabled: nothing to load
            return
        if model.get("state") != "LOADED":
            model = self.api("load_model", name)
        if not getattr(self, "wait", True):        # apply --no-wait: loading goes on by itself
            return
        timeout = getattr(self, "wait_timeout", None) or self.model_load_timeout
        deadline = time.monotonic() + timeout
        while model.get("state") != "LOADED":
            if model.get("state") == "FAILED":
                raise TargetError(f"model {name} failed to load: {model.get('message') or 'no message'}")
            if time.monotonic() > deadline:
                raise TargetError(f"model {name} not LOADED after {timeout:.0f} s "
                                  f"(state {model.get('state')})")
            time.sleep(0.2)
            model = self.api("get_model", name)

    def _put_pipeline(self, name: str, desired: Resource) -> None:
        ref = next(p for p in self.project.pipelines if p.name == name)
        self.api("put_pipeline", name, ref.definition_text, export=plain(ref.export), owner=self.project.name)

    def _put_ae_title(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self.api("put_ae_title", name, f["pipelines"], group_by=f["group-by"], timeout=f["timeout"],
                 priority=f["priority"], owner=self.project.name)

    def _put_source(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self.api("put_source", name, f["ae-title"], f["host"], owner=self.project.name)

    def _put_destination(self, name: str, desired: Resource) -> None:
        f = desired.fields
        self.api("put_destination", name, f["ae-title"], f["host"], f["port"], owner=self.project.name,
                 tls=f.get("tls", False))
