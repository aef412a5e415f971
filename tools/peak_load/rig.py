"""The platform under load: its own process (`claractl platform start`'s background `serve`),
configured through its API for the peak hour — one AE title grouping by study into a pipeline of
one no-op operator (it copies one instance of the study to its output) exported to the PACS.
It can be killed with SIGKILL and started again on the same state dir."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.dicom.scu import DicomPeerError, Peer, echo
from claractl.platform.process import api_token, is_running, read_pid, start_background, stop_background

from .pacs import free_port

CALLED_AE = "PEAK"
PIPELINE = "copy-one"
# The operator copies the first instance (by name) of the study: a re-run copies the same one.
COPY_ONE = """api-version: 0.4.0
name: copy-one
operators:
  - name: copy
    container:
      image: claractl/copy-one
      command: ["sh", "-c", 'f=$(ls "$1" | head -n 1) && cp "$1/$f" "$2/"', "copy-one", "/input", "/output"]
    input: [{path: /input}]
    output: [{path: /output}]
"""


class PlatformRig:
    def __init__(self, work_dir: Path, database: str = "sqlite", *, workers: int = 2, group_timeout: float = 5.0,
                 payload_retention: float = 30.0, dicom: dict | None = None, dashboard: bool = False) -> None:
        self.state_dir = work_dir / "state"
        config = PlatformConfig(state_dir=str(self.state_dir))
        config.api.port, config.dicom.port = free_port(), free_port()
        config.api.workers = workers
        config.store.database = database
        config.engine.payload_retention = payload_retention
        config.inference.enabled = False
        config.render.enabled = dashboard
        config.render.port = free_port()
        for key, value in (dicom or {}).items():
            setattr(config.dicom, key, value)
        config.save()
        self.config = PlatformConfig.load(self.state_dir)
        self.group_timeout = group_timeout
        self.client: PlatformClient | None = None

    @property
    def dicom_port(self) -> int:
        return self.config.dicom.port

    @property
    def pid(self) -> int | None:
        return read_pid(self.state_dir)

    def start(self, timeout: float = 120) -> "PlatformRig":
        start_background(str(self.state_dir), timeout=timeout)
        if self.client is not None:
            self.client.close()
        self.client = PlatformClient(self.config.api_url, token=api_token(str(self.state_dir)))
        return self

    def kill9(self) -> None:
        """SIGKILL, as a power cut would stop it (its operators may outlive it; recovery kills them)."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        while is_running(self.state_dir):
            time.sleep(0.05)

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        stop_background(str(self.state_dir), timeout=60)

    def configure(self, pacs_ae: str, pacs_port: int, senders: list[str], *, destination_tls: bool = False) -> None:
        c = self.client
        c.put_destination("pacs", pacs_ae, "127.0.0.1", pacs_port)
        c.put_pipeline(PIPELINE, COPY_ONE, export=[{"agent": "ClaraSCU", "destinations": ["pacs"]}])
        c.put_ae_title(CALLED_AE, [PIPELINE], group_by="0020,000D", timeout=self.group_timeout)
        for aet in senders:
            c.put_source(aet.lower(), aet, "127.0.0.1")
        self.wait_accepting(senders[0])

    def wait_accepting(self, calling_ae: str, timeout: float = 30) -> None:
        """Until the adapter accepts `calling_ae` for our AE (it re-reads its configuration every 2 s)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                echo(Peer(CALLED_AE, "127.0.0.1", self.dicom_port), calling_ae=calling_ae)
                return
            except DicomPeerError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
