"""Helpers shared by the bench scripts (run as `python bench/<name>.py`, so this folder is on sys.path)."""

from __future__ import annotations

import socket
from datetime import datetime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds(a: str, b: str) -> float:
    """Seconds between two ISO timestamps (as the platform API returns them)."""
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
