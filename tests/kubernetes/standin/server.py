"""An HTTP stand-in for the Kubernetes API server, for the official `kubernetes` client.

Serves discovery, namespaced CRUD + list (label selectors) + PATCH (json, merge, strategic
approximation, server-side apply) + status subresources for the kinds in resources.py, Status
bodies for errors, dry-run, optional bearer-token auth (401) and a forbid switch (403), an
admission hook, and the service proxy. What it does NOT do: watch, field selectors beyond
metadata.name, finalizers/graceful deletion/garbage collection (except a namespace's objects),
pagination, OpenAPI-schema-driven list types (see fields.KEYED), real controllers (tests drive
status, or set `auto_ready`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import yaml

from .resources import BY_PATH, RESOURCES, Resource, SelectorError, parse_selector
from .store import ApiError, Store


class StandIn:
    """Start with `with StandIn() as api:`; `api.url` is the server address."""

    def __init__(self, token: str | None = None) -> None:
        self.store = Store()
        self.token = token                   # when set, requests without "Bearer <token>" get 401
        self.forbid: set[str] = set()        # verbs ("list", "patch", …) answered with 403 RBAC errors
        self.proxies: dict[tuple[str, str, str], str] = {}
        self.pod_logs: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        self.delete_options: list[tuple[str, str, dict]] = []   # (kind, name, DeleteOptions body) per delete
        self.auto_ready = False              # Deployments/Jobs get a ready status on every write
        self.latency = 0.0                   # seconds added to every request (network round trip, for bench/)
        self.store.controller = self._controller
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "StandIn":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- test controls ----
    def create_namespace(self, name: str) -> None:
        self.store.create(_res("", "v1", "namespaces"), None, {"metadata": {"name": name}}, "standin", False)

    def set_pod_log(self, namespace: str, pod: str, text: str) -> None:
        """What GET …/pods/{pod}/log returns (the pod must exist)."""
        self.pod_logs[(namespace, pod)] = text

    def register_proxy(self, namespace: str, service: str, port: str, url: str) -> None:
        """Requests to services/{service}:{port}/proxy/… in namespace go to url."""
        self.proxies[(namespace, service, str(port))] = url.rstrip("/")

    def set_deployment_available(self, namespace: str, name: str, available: bool = True, message: str = "") -> None:
        res = _res("apps", "v1", "deployments")
        obj = self.store.get(res, namespace, name)
        obj["status"] = _deployment_status(obj, available, message)
        self.store.update(res, namespace, name, obj, "standin-controller", False, subresource="status")

    def set_job_finished(self, namespace: str, name: str, succeeded: bool = True, message: str = "") -> None:
        res = _res("batch", "v1", "jobs")
        obj = self.store.get(res, namespace, name)
        kind = "Complete" if succeeded else "Failed"
        obj["status"] = {"succeeded" if succeeded else "failed": 1, "conditions": [
            {"type": kind, "status": "True", "reason": "BackoffLimitExceeded" if not succeeded else "Completed",
             "message": message}]}
        self.store.update(res, namespace, name, obj, "standin-controller", False, subresource="status")

    def _controller(self, res: Resource, obj: dict) -> None:
        if self.auto_ready and res.kind == "Deployment":
            obj["status"] = _deployment_status(obj, True, "")


def _deployment_status(obj: dict, available: bool, message: str) -> dict:
    replicas = obj["spec"].get("replicas", 1)
    ready = replicas if available else 0
    return {"observedGeneration": obj["metadata"]["generation"], "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
            "conditions": [{"type": "Available", "status": "True" if available else "False",
                            "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                            "message": message or ("Deployment has minimum availability." if available
                                                   else "Deployment does not have minimum availability.")}]}


def _res(group: str, version: str, plural: str) -> Resource:
    return BY_PATH[(group, version, plural)]


def _discovery_groups() -> dict:
    groups: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group:
            groups.setdefault(r.group, [])
            if r.version not in groups[r.group]:
                groups[r.group].append(r.version)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
         "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups.items()]}


def _resource_list(group: str, version: str) -> dict | None:
    found = [r for r in RESOURCES if r.group == group and r.version == version]
    if not found:
        return None
    verbs = ["create", "delete", "get", "list", "patch", "update"]
    resources = []
    for r in found:
        resources.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                          "kind": r.kind, "verbs": verbs})
        if r.status_subresource:
            resources.append({"name": f"{r.plural}/status", "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def _handler(api: StandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes; without NODELAY each reply waits ~40 ms
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:       # quiet
            pass

        def do_GET(self): self._dispatch("GET")
        def do_POST(self): self._dispatch("POST")
        def do_PUT(self): self._dispatch("PUT")
        def do_PATCH(self): self._dispatch("PATCH")
        def do_DELETE(self): self._dispatch("DELETE")

        def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _dispatch(self, method: str) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            parts = [unquote(p) for p in split.path.split("/") if p]
            api.requests.append((method, split.path))
            raw = self._body()
            if api.latency:
                time.sleep(api.latency)
            try:
                if api.token is not None and self.headers.get("Authorization") != f"Bearer {api.token}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                self._route(method, parts, query, raw, split)
            except ApiError as exc:
                self._send(exc.code, exc.status())
            except Exception as exc:  # a stand-in bug must surface as a 500 with its message
                self._send(500, ApiError(500, "InternalError", f"stand-in error: {exc!r}").status())

        def _route(self, method: str, parts: list[str], query: dict, raw: bytes, split) -> None:
            if method == "GET" and parts == ["version"]:
                return self._send(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-standin"})
            if method == "GET" and parts == ["api"]:
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            if method == "GET" and parts == ["apis"]:
                return self._send(200, _discovery_groups())
            if parts[:1] == ["api"] and len(parts) >= 2:
                group, version, rest = "", parts[1], parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 3:
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if not rest:
                listing = _resource_list(group, version)
                if method != "GET" or listing is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return self._send(200, listing)
            ns = None
            if rest[0] == "namespaces" and len(rest) >= 3:
                ns, rest = rest[1], rest[2:]
                if group == "" and rest[0] == "services" and len(rest) >= 3 and rest[2] == "proxy":
                    return self._proxy(method, ns, rest[1], rest[3:], split, raw)
            elif rest[0] == "namespaces" and len(rest) == 2:
                rest = ["namespaces", rest[1]]
            res = BY_PATH.get((group, version, rest[0]))
            if res is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            name = rest[1] if len(rest) > 1 else None
            subresource = rest[2] if len(rest) > 2 else ""
            if res.kind == "Pod" and subresource == "log" and method == "GET":
                accept = self.headers.get("Accept") or "*/*"
                if not any(t.strip().split(";")[0] in ("*/*", "application/json", "application/yaml",
                                                       "application/vnd.kubernetes.protobuf")
                           for t in accept.split(",")):
                    raise ApiError(406, "NotAcceptable", "only the following media types are accepted: "
                                   "application/json, application/yaml, application/vnd.kubernetes.protobuf")
                api.store.get(res, ns, name)                      # 404 for a missing pod
                return self._send(200, api.pod_logs.get((ns, name), "").encode(), "text/plain")
            if subresource and (subresource != "status" or not res.status_subresource):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update",
                    "PATCH": "patch", "DELETE": "delete"}[method]
            if verb in api.forbid:
                who = 'User "system:serviceaccount:default:claractl"'
                where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
                named = f'"{name}" ' if name else ""
                raise ApiError(403, "Forbidden", f'{res.qualified} {named}is forbidden: '
                               f'{who} cannot {verb} resource "{res.plural}" in API group "{res.group}"{where}',
                               {"name": name or "", "group": res.group, "kind": res.plural})
            if query.get("watch") in ("true", "1"):
                raise ApiError(405, "MethodNotAllowed", "watch is not supported by the stand-in API server")
            dry_run = query.get("dryRun") == "All"
            if "dryRun" in query and not dry_run:
                raise ApiError(400, "BadRequest", f"unsupported dry-run value {query['dryRun']!r}: only All is supported")
            manager = query.get("fieldManager") or (self.headers.get("User-Agent") or "unknown").split("/")[0]
            store = api.store
            if method == "GET" and name:
                return self._send(200, store.get(res, ns, name))
            if method == "GET":
                try:
                    selector = parse_selector(query.get("labelSelector", ""))
                except SelectorError as exc:
                    raise ApiError(400, "BadRequest", f"unable to parse requirement: {exc}")
                field = query.get("fieldSelector", "")
                items, rv = store.list(res, ns, selector)
                if field:
                    if not field.startswith("metadata.name="):
                        raise ApiError(400, "BadRequest", f'field label not supported by the stand-in: "{field}"')
                    items = [o for o in items if o["metadata"]["name"] == field.split("=", 1)[1]]
                for item in items:               # list items carry no kind/apiVersion, as on a real server
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                return self._send(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                                        "metadata": {"resourceVersion": rv}, "items": items})
            body = self._parse(raw, self.headers.get("Content-Type", ""))
            if method == "POST" and not name:
                return self._send(201, store.create(res, ns, body, manager, dry_run))
            if method == "PUT" and name:
                return self._send(200, store.update(res, ns, name, body, manager, dry_run, subresource))
            if method == "PATCH" and name:
                content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                force = query.get("force") in ("1", "t", "T", "TRUE", "true", "True")   # Go strconv.ParseBool
                if force and content_type != "application/apply-patch+yaml":
                    raise ApiError(422, "Invalid", "force may not be set for non-apply patch calls")
                existed = (res.qualified, ns or "", name) in store.objects
                # apply needs an explicit fieldManager; other writes default to the user agent's name
                patch_manager = query.get("fieldManager") if content_type == "application/apply-patch+yaml" else manager
                result = store.patch(res, ns, name, content_type, body, patch_manager, dry_run, force, subresource)
                return self._send(200 if existed else 201, result)
            if method == "DELETE" and name:
                pre = (body or {}).get("preconditions", {}).get("resourceVersion") if isinstance(body, dict) else None
                api.delete_options.append((res.kind, name, body if isinstance(body, dict) else {}))
                return self._send(200, store.delete(res, ns, name, dry_run, pre))
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

        def _parse(self, raw: bytes, content_type: str) -> Any:
            if not raw:
                return None
            try:
                if "yaml" in content_type:
                    return yaml.safe_load(raw)
                return json.loads(raw)
            except (ValueError, yaml.YAMLError) as exc:
                raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {exc}")

        def _proxy(self, method: str, ns: str, target: str, path: list[str], split, raw: bytes) -> None:
            service, _, port = target.partition(":")
            url = api.proxies.get((ns, service, port))
            if url is None:
                if not any(k[:2] == (ns, service) for k in api.proxies):
                    raise ApiError(404, "NotFound", f'services "{service}" not found')
                raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{service}"')
            forward = url + "/" + "/".join(path) + (("?" + split.query) if split.query else "")
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("content-type", "accept", "x-clara-token")}
            try:
                reply = httpx.request(method, forward, content=raw or None, headers=headers, timeout=30)
            except httpx.HTTPError as exc:
                raise ApiError(503, "ServiceUnavailable", f"error trying to reach service: {exc}")
            self._send(reply.status_code, reply.content, reply.headers.get("content-type", "application/octet-stream"))

    return Handler
