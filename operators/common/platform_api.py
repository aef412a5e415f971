"""Export tasks through the platform API, as Clara's register-results does.

Environment (docs/architecture.md, "Operators on the local executor"): CLARA_API_URL,
CLARA_API_TOKEN (optional bearer), NVIDIA_CLARA_JOB_ID, NVIDIA_CLARA_PAYLOAD_PATH, and
NVIDIA_CLARA_INPUT_PATHS (PDL path → where it is; on Kubernetes an input is its own mount,
`/input`, and also a folder of the payload mount, which is where export tasks name files from).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from .errors import OperatorError


@dataclass
class JobContext:
    api_url: str
    job_id: str
    payload_root: Path
    token: str | None
    input_paths: dict[str, str] | None = None     # PDL input path → its place under the payload

    @classmethod
    def from_env(cls, env=None) -> "JobContext":
        env = os.environ if env is None else env
        missing = [k for k in ("CLARA_API_URL", "NVIDIA_CLARA_JOB_ID", "NVIDIA_CLARA_PAYLOAD_PATH") if not env.get(k)]
        if missing:
            raise OperatorError(f"not running inside a job: {', '.join(missing)} not set")
        try:
            input_paths = json.loads(env.get("NVIDIA_CLARA_INPUT_PATHS") or "{}")
        except ValueError:
            raise OperatorError("NVIDIA_CLARA_INPUT_PATHS is not a JSON object") from None
        return cls(env["CLARA_API_URL"].rstrip("/"), env["NVIDIA_CLARA_JOB_ID"],
                   Path(env["NVIDIA_CLARA_PAYLOAD_PATH"]), env.get("CLARA_API_TOKEN") or None,
                   input_paths if isinstance(input_paths, dict) else None)

    def relative_files(self, directory: Path) -> list[str]:
        """Every file under `directory`, as a path relative to the payload root (sorted)."""
        root = self.payload_root.resolve()
        mapped = (self.input_paths or {}).get(str(directory).rstrip("/") or "/")
        directory = Path(mapped).resolve() if mapped else directory.resolve()
        if not directory.is_dir():
            raise OperatorError(f"input directory {directory} does not exist")
        try:
            directory.relative_to(root)
        except ValueError:
            raise OperatorError(f"{directory} is not inside the job payload {root}") from None
        return sorted(p.relative_to(root).as_posix() for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))

    def create_export_task(self, agent: str, destination: str | None, files: list[str]) -> dict:
        body = {"job_id": self.job_id, "agent": agent, "files": files}
        if destination is not None:
            body["destination"] = destination
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = f"{self.api_url}/api/v1/export-tasks"
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=30.0)
        except httpx.HTTPError as exc:
            raise OperatorError(f"platform API {self.api_url} unreachable: {type(exc).__name__}: {exc}") from exc
        if r.status_code >= 300:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise OperatorError(f"platform API refused the export task for agent {agent!r}"
                                f"{f' to {destination!r}' if destination else ''}: HTTP {r.status_code}: {str(detail)[:500]}")
        try:
            return r.json()
        except ValueError:
            return {}
