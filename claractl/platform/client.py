"""A small typed client of the platform API, for the CLI, the targets and operators.

    client = PlatformClient("http://127.0.0.1:8765", token=None)
    client.put_pipeline("ct-seg", text, export=[{"agent": "ClaraSCU", "destinations": ["pacs"]}])
    payload = client.create_payload()
    client.upload_payload_file(payload["id"], "input/ct.nii.gz", Path("ct.nii.gz"))
    job = client.create_job("ct-seg", payload_id=payload["id"]); client.start_job(job["id"])
    client.wait_for_job(job["id"])

Every method returns the decoded JSON; an error answer raises `ApiError(status, detail)`; a
platform that does not answer raises `ApiUnavailable`. `PlatformClient.for_state_dir(DIR)`
reads the URL and token of a local platform. The token is sent, never printed.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

API = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body or {}


class ApiUnavailable(ApiError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, f"the platform API at {url} is not reachable ({reason}); is it running? "
                            f"(claractl platform start)")


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _path(path: str) -> str:
    return quote(path, safe="/")


class PlatformClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def for_state_dir(cls, state_dir: str | os.PathLike[str] = ".clara", **kw: Any) -> "PlatformClient":
        from claractl.platform.api.auth import read_token
        from claractl.platform.config import PlatformConfig
        from claractl.platform.process import running_config
        config = running_config(state_dir)
        token = read_token(PlatformConfig.load(state_dir))   # the runtime copy has it redacted
        return cls(config.api_url, token=token, **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PlatformClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            r = self._http.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, type(exc).__name__) from exc
        if r.status_code >= 400:
            try:
                body = r.json()
                detail = body.get("detail") if isinstance(body, dict) else str(body)
            except ValueError:
                body, detail = None, r.text.strip() or r.reason_phrase
            raise ApiError(r.status_code, str(detail), body if isinstance(body, dict) else None)
        return r

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        r = self._send(method, url, **kw)
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

    # -- health --------------------------------------------------------------------------------
    def health_live(self) -> dict:
        return self._json("GET", "/health/live")

    def health_ready(self) -> dict:
        """The readiness document, also when not ready (503)."""
        try:
            r = self._http.get("/health/ready")
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, type(exc).__name__) from exc
        return {**r.json(), "http_status": r.status_code}

    def metrics(self) -> str:
        return self._send("GET", "/metrics").text

    def get_config(self) -> dict:
        return self._json("GET", f"{API}/config")

    def reload_config(self) -> dict:
        """Apply the settings file to the running platform; see POST /config/reload."""
        return self._json("POST", f"{API}/config/reload")

    # -- pipelines / AE titles / sources / destinations ----------------------------------------
    def list_pipelines(self) -> list[dict]:
        return self._json("GET", f"{API}/pipelines")

    def get_pipeline(self, name: str) -> dict:
        return self._json("GET", f"{API}/pipelines/{_q(name)}")

    def put_pipeline(self, name: str, definition_text: str, export: list[dict] | None = None,
                     owner: str | None = None) -> dict:
        return self._json("PUT", f"{API}/pipelines/{_q(name)}",
                          json={"definition_text": definition_text, "export": export or [], "owner": owner})

    def delete_pipeline(self, name: str) -> None:
        self._send("DELETE", f"{API}/pipelines/{_q(name)}")

    def list_ae_titles(self) -> list[dict]:
        return self._json("GET", f"{API}/ae-titles")

    def get_ae_title(self, ae_title: str) -> dict:
        return self._json("GET", f"{API}/ae-titles/{_q(ae_title)}")

    def put_ae_title(self, ae_title: str, pipelines: list[str], group_by: str = "0020,000D", timeout: float = 5.0,
                     priority: str = "normal", owner: str | None = None) -> dict:
        return self._json("PUT", f"{API}/ae-titles/{_q(ae_title)}", json={
            "pipelines": pipelines, "group_by": group_by, "timeout": timeout, "priority": priority, "owner": owner})

    def delete_ae_title(self, ae_title: str) -> None:
        self._send("DELETE", f"{API}/ae-titles/{_q(ae_title)}")

    def list_sources(self) -> list[dict]:
        return self._json("GET", f"{API}/sources")

    def get_source(self, name: str) -> dict:
        return self._json("GET", f"{API}/sources/{_q(name)}")

    def put_source(self, name: str, ae_title: str, host: str, owner: str | None = None) -> dict:
        return self._json("PUT", f"{API}/sources/{_q(name)}", json={"ae_title": ae_title, "host": host, "owner": owner})

    def delete_source(self, name: str) -> None:
        self._send("DELETE", f"{API}/sources/{_q(name)}")

    def list_destinations(self) -> list[dict]:
        return self._json("GET", f"{API}/destinations")

    def get_destination(self, name: str) -> dict:
        return self._json("GET", f"{API}/destinations/{_q(name)}")

    def put_destination(self, name: str, ae_title: str, host: str, port: int, owner: str | None = None,
                        tls: bool = False) -> dict:
        return self._json("PUT", f"{API}/destinations/{_q(name)}",
                          json={"ae_title": ae_title, "host": host, "port": port, "tls": tls, "owner": owner})

    def delete_destination(self, name: str) -> None:
        self._send("DELETE", f"{API}/destinations/{_q(name)}")

    # -- models --------------------------------------------------------------------------------
    def list_models(self) -> list[dict]:
        return self._json("GET", f"{API}/models")

    def get_model(self, name: str) -> dict:
        return self._json("GET", f"{API}/models/{_q(name)}")

    def put_model(self, name: str, model_dir: str | os.PathLike[str], owner: str | None = None,
                  timeout: float = 600.0) -> dict:
        """Upload a Triton model directory (tar.gz made in memory-bounded chunks)."""
        buf = io.BytesIO()
        root = Path(model_dir)
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for path in sorted(root.rglob("*")):
                if any(part.startswith(".") for part in path.relative_to(root).parts):
                    continue
                tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
        params = {"owner": owner} if owner else {}
        return self._json("PUT", f"{API}/models/{_q(name)}", content=buf.getvalue(), params=params,
                          headers={"Content-Type": "application/gzip"}, timeout=timeout)

    def load_model(self, name: str) -> dict:
        return self._json("POST", f"{API}/models/{_q(name)}/load", timeout=600)

    def unload_model(self, name: str) -> dict:
        return self._json("POST", f"{API}/models/{_q(name)}/unload")

    def delete_model(self, name: str) -> None:
        self._send("DELETE", f"{API}/models/{_q(name)}")

    # -- payloads ------------------------------------------------------------------------------
    def create_payload(self, metadata: dict[str, str] | None = None) -> dict:
        """A reusable payload (jobs take it as input; see create_job(input_payloads=…))."""
        return self._json("POST", f"{API}/payloads", json={"metadata": metadata or {}})

    def list_payloads(self, type: str | None = None, limit: int = 1000) -> list[dict]:
        params = {"limit": limit, **({"type": type} if type else {})}
        return self._json("GET", f"{API}/payloads", params=params)

    def get_payload(self, payload_id: str) -> dict:
        return self._json("GET", f"{API}/payloads/{_q(payload_id)}")

    def delete_payload(self, payload_id: str) -> None:
        self._send("DELETE", f"{API}/payloads/{_q(payload_id)}")

    def remove_payload_file(self, payload_id: str, path: str) -> None:
        self._send("DELETE", f"{API}/payloads/{_q(payload_id)}/files/{_path(path)}")

    def upload_payload_file(self, payload_id: str, path: str, source: str | os.PathLike[str] | bytes | BinaryIO,
                            timeout: float = 600.0) -> dict:
        """PUT one file (path relative to the payload root, e.g. `input/a.dcm`), streamed."""
        if isinstance(source, bytes):
            content: Any = source
        elif isinstance(source, (str, os.PathLike)):
            content = _chunks(Path(source))
        else:
            content = iter(lambda: source.read(1 << 20), b"")
        return self._json("PUT", f"{API}/payloads/{_q(payload_id)}/files/{_path(path)}", content=content,
                          headers={"Content-Type": "application/octet-stream"}, timeout=timeout)

    def upload_input_dir(self, payload_id: str, directory: str | os.PathLike[str]) -> list[dict]:
        """Every file under `directory` into the payload's `input/`, keeping relative paths."""
        root = Path(directory)
        return [self.upload_payload_file(payload_id, f"input/{p.relative_to(root).as_posix()}", p)
                for p in sorted(root.rglob("*")) if p.is_file()]

    def list_payload_files(self, payload_id: str) -> list[dict]:
        return self._json("GET", f"{API}/payloads/{_q(payload_id)}/files")

    def download_payload_file(self, payload_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Stream one file to `dest` (written to a temp name, then renamed)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self._http.stream("GET", f"{API}/payloads/{_q(payload_id)}/files/{_path(path)}") as r:
                if r.status_code >= 400:
                    r.read()
                    raise ApiError(r.status_code, (r.json() or {}).get("detail", r.text))
                with open(tmp, "wb") as fh:
                    for chunk in r.iter_bytes(1 << 20):
                        fh.write(chunk)
            os.replace(tmp, dest)
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, type(exc).__name__) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    # -- jobs ----------------------------------------------------------------------------------
    def create_job(self, pipeline: str, name: str | None = None, priority: str = "normal",
                   payload_id: str | None = None, metadata: dict | None = None, timeout: float | None = None,
                   input_payloads: list[str] | None = None) -> dict:
        """A PENDING job with a payload of its own (`payload_id` in the answer); `payload_id` /
        `input_payloads` are payloads whose input/ it takes (read-only)."""
        body: dict[str, Any] = {"pipeline": pipeline, "priority": priority, "metadata": metadata or {}}
        if name:
            body["name"] = name
        if payload_id:
            body["payload_id"] = payload_id
        if input_payloads:
            body["input_payloads"] = list(input_payloads)
        if timeout:
            body["timeout"] = timeout
        return self._json("POST", f"{API}/jobs", json=body)

    def start_job(self, job_id: str, variables: dict[str, Any] | None = None) -> dict:
        return self._json("POST", f"{API}/jobs/{_q(job_id)}/start", json={"variables": variables or {}})

    def cancel_job(self, job_id: str) -> dict:
        return self._json("POST", f"{API}/jobs/{_q(job_id)}/cancel")

    def get_job(self, job_id: str) -> dict:
        return self._json("GET", f"{API}/jobs/{_q(job_id)}")

    def list_jobs(self, state: str | None = None, status: str | None = None, pipeline: str | None = None,
                  created_after: str | None = None, limit: int = 100) -> list[dict]:
        params = {k: v for k, v in dict(state=state, status=status, pipeline=pipeline,
                                         created_after=created_after, limit=limit).items() if v is not None}
        return self._json("GET", f"{API}/jobs", params=params)

    def get_job_logs(self, job_id: str, operator: str, tail: int | None = None) -> str:
        params = {"tail": tail} if tail else {}
        return self._send("GET", f"{API}/jobs/{_q(job_id)}/logs/{_q(operator)}", params=params).text

    def wait_for_job(self, job_id: str, timeout: float = 600.0, interval: float = 0.2) -> dict:
        """Poll until the job is STOPPED; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job["state"] == "STOPPED":
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout:g} s")
            time.sleep(interval)

    # -- audit trail -----------------------------------------------------------------------------
    def list_audit(self, **filters: Any) -> list[dict]:
        """GET /audit: kind, actor, study_uid, job_id, since, until, failures, before_id, after_id, limit."""
        params = {k: v for k, v in filters.items() if v is not None and v is not False}
        return self._json("GET", f"{API}/audit", params=params)

    # -- export tasks (results service) --------------------------------------------------------
    def create_export_task(self, job_id: str, agent: str, files: list[str], destination: str | None = None,
                           max_attempts: int = 5) -> dict:
        return self._json("POST", f"{API}/export-tasks", json={
            "job_id": job_id, "agent": agent, "files": files, "destination": destination,
            "max_attempts": max_attempts})

    def list_export_tasks(self, agent: str | None = None, state: str | None = None,
                          job_id: str | None = None) -> list[dict]:
        params = {k: v for k, v in dict(agent=agent, state=state, job_id=job_id).items() if v}
        return self._json("GET", f"{API}/export-tasks", params=params)

    def get_export_task(self, task_id: str) -> dict:
        return self._json("GET", f"{API}/export-tasks/{_q(task_id)}")

    def claim_export_tasks(self, agent: str, limit: int = 10) -> list[dict]:
        return self._json("POST", f"{API}/export-tasks/claim", params={"agent": agent, "limit": limit})

    def mark_export_succeeded(self, task_id: str, message: str | None = None,
                              file_status: dict[str, str] | None = None) -> dict:
        return self._json("POST", f"{API}/export-tasks/{_q(task_id)}/succeeded",
                          json={"message": message, "file_status": file_status or {}})

    def mark_export_failed(self, task_id: str, message: str | None = None,
                           file_status: dict[str, str] | None = None) -> dict:
        return self._json("POST", f"{API}/export-tasks/{_q(task_id)}/failed",
                          json={"message": message, "file_status": file_status or {}})

    # -- apply locks ---------------------------------------------------------------------------
    def acquire_lock(self, scope: str, holder: str) -> dict:
        """The lock, or ApiError(409) whose `body` has holder, lock_id, age_seconds."""
        return self._json("POST", f"{API}/locks/{_path(scope)}", json={"holder": holder})

    def get_lock(self, scope: str) -> dict:
        return self._json("GET", f"{API}/locks/{_path(scope)}")

    def release_lock(self, scope: str, lock_id: str | None = None, force: bool = False) -> None:
        params: dict[str, Any] = {"force": "true"} if force else {"lock_id": lock_id}
        self._send("DELETE", f"{API}/locks/{_path(scope)}", params=params)


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk
