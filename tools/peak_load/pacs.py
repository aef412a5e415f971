"""Orthanc as the PACS that receives the platform's results (Debian's `Orthanc`, own config,
storage and free ports; TCP_NODELAY=1 like every dcmtk-based peer). It can be stopped and started
again on the same ports and storage ("the PACS is down for a few minutes"), and speak DICOM TLS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

ORTHANC = "/usr/sbin/Orthanc"
PEER_ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancPacs:
    def __init__(self, work_dir: Path, ae_title: str = "PACS", *, tls: dict | None = None,
                 modalities: dict[str, list] | None = None) -> None:
        """`tls`: {certificate, private_key, trusted (CA bundle), require_client_certificate}."""
        self.dir = work_dir
        self.ae_title = ae_title
        self.http_port, self.dicom_port = free_port(), free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "peak-pacs", "StorageDirectory": str(self.dir / "db"), "IndexDirectory": str(self.dir / "db"),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": ae_title,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True, "Plugins": [], "StorageCompression": False,
            "DicomModalities": modalities or {}, "ConcurrentJobs": 2, "DicomThreadsCount": 8,
            "MaximumStorageSize": 0, "SaveJobs": False,
        }
        if tls:
            config.update({"DicomTlsEnabled": True, "DicomTlsCertificate": str(tls["certificate"]),
                           "DicomTlsPrivateKey": str(tls["private_key"]),
                           "DicomTlsTrustedCertificates": str(tls["trusted"]),
                           "DicomTlsRemoteCertificateRequired": bool(tls.get("require_client_certificate"))})
        self.config_path = self.dir / "orthanc.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.proc: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=120)

    def start(self, timeout: float = 60) -> "OrthancPacs":
        log = open(self.dir / "orthanc.log", "ab")
        self.proc = subprocess.Popen([ORTHANC, str(self.config_path)], env=PEER_ENV, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/system").status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start; see {self.dir / 'orthanc.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.http.close()

    def __enter__(self) -> "OrthancPacs":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ what it holds
    def instance_count(self) -> int:
        return int(self.http.get("/statistics").json()["CountInstances"])

    def has_instance(self, sop_uid: str) -> bool:
        found = self.http.post("/tools/lookup", content=sop_uid).json()
        return any(x["Type"] == "Instance" for x in found)

    def sop_uids(self) -> set[str]:
        """Every SOP Instance UID stored (one REST call per 1000 instances)."""
        out: set[str] = set()
        since = 0
        while True:
            page = self.http.get("/instances", params={"expand": "", "since": since, "limit": 1000}).json()
            if not page:
                return out
            out.update(i["MainDicomTags"]["SOPInstanceUID"] for i in page)
            since += len(page)
