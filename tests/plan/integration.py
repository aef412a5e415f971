"""A real local platform per test, on free ports, driven through the real CLI."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import httpx
from typer.testing import CliRunner

from claractl.cli.main import app
from tests.plan.projects import write_project


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@dataclass
class Env:
    root: Path
    ports: dict

    def write(self, **kw) -> Path:
        return write_project(self.root, **{**self.ports, **kw})

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api_port']}/api/v1"

    def get(self, path: str):
        return httpx.get(self.api + path, timeout=10).json()

    def cli(self, *args: str):
        result = CliRunner().invoke(app, ["-C", str(self.root), *args], env={"CI": "true"})
        return result

    def stop(self) -> None:
        from claractl.platform import process
        process.stop_background(str(self.root / ".clara"))


def make_env(root: Path) -> Env:
    api, clara, dicom, http, grpc, render = free_ports(6)
    return Env(root, {"api_port": api, "clara_port": clara, "dicom_port": dicom, "http_port": http,
                      "grpc_port": grpc, "render_port": render})
