"""Read the adapter status from a running platform: GET /api/v1/dicom/status."""

from __future__ import annotations

import os
from typing import Any

import httpx


class StatusUnavailable(Exception):
    pass


def fetch_status(api_url: str, token: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    token = token or os.environ.get("CLARA_API_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = api_url.rstrip("/") + "/api/v1/dicom/status"
    try:
        r = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        raise StatusUnavailable(f"platform API at {api_url} not reachable ({type(exc).__name__})") from exc
    if r.status_code == 404:
        raise StatusUnavailable(f"platform at {api_url} has no DICOM adapter running (404 on /api/v1/dicom/status)")
    if r.status_code >= 400:
        raise StatusUnavailable(f"platform API at {api_url}: HTTP {r.status_code}")
    return r.json()
