"""Ingest throughput: our SCP vs dcmtk storescp vs Orthanc, same 200-slice CT, same storescu.

    python bench/dicom_ingest.py [--slices 200] [--repeat 2]

Prints a table (instances/s, MB/s, ratios to storescp and to Orthanc) for 1 and 4 parallel
associations (4 storescu processes, each sending a quarter of the files). Our SCP runs as its own
process (`python -m claractl.platform.dicom`) and fsyncs every instance before Success;
storescp and Orthanc do not fsync. All dcmtk/Orthanc processes run with TCP_NODELAY=1.
Best of `--repeat` runs per cell; each run starts from an empty receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claractl.platform.config import PlatformConfig  # noqa: E402
from claractl.platform.dicom.synthetic import make_ct_series  # noqa: E402
from claractl.platform.store import Store  # noqa: E402
from claractl.platform.store.models import AETitle, Pipeline, Source  # noqa: E402

ENV = {**os.environ, "TCP_NODELAY": "1"}
STORESCU = "/usr/bin/storescu"
AE = "BENCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class OurScp:
    name = "claractl SCP (fsync)"

    def __init__(self, work: Path) -> None:
        self.config = PlatformConfig(state_dir=str(work / "state"))
        self.config.dicom.port = free_port()
        self.config.dicom.host = "127.0.0.1"
        self.config.dicom.watermark_percent = 99.9
        self.config.root.mkdir(parents=True)
        self.config.save()
        store = Store(self.config.database_url)
        store.create_all()
        with store.session() as s:
            s.add(Pipeline(name="bench", name_key="bench", definition_text="", definition={"name": "bench", "operators": []}))
            s.add(AETitle(ae_title=AE, pipelines=["bench"], timeout=600))
            s.add(Source(name="storescu", ae_title="STORESCU", host="127.0.0.1"))
        store.dispose()
        self.proc = subprocess.Popen([sys.executable, "-m", "claractl.platform.dicom", "--state-dir",
                                      str(self.config.root), "--no-export"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()
        self.port = self.config.dicom.port

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class StoreScp:
    name = "dcmtk storescp"

    def __init__(self, work: Path) -> None:
        out = work / "out"
        out.mkdir()
        self.port = free_port()
        self.proc = subprocess.Popen(["/usr/bin/storescp", "--fork", "-od", str(out), "+xa", str(self.port)],
                                     env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Orthanc:
    name = "Orthanc"

    def __init__(self, work: Path) -> None:
        self.port, http = free_port(), free_port()
        cfg = {"Name": "bench", "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
               "HttpPort": http, "DicomPort": self.port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
               "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
               "Plugins": [], "StorageCompression": False, "DicomThreadsCount": 4}
        (work / "orthanc.json").write_text(json.dumps(cfg))
        self.proc = subprocess.Popen(["/usr/sbin/Orthanc", str(work / "orthanc.json")], env=ENV,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http}/system", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def send(files: list[Path], port: int, associations: int) -> float:
    chunks = [files[i::associations] for i in range(associations)]
    start = time.perf_counter()
    procs = [subprocess.Popen([STORESCU, "-aec", AE, "127.0.0.1", str(port), *map(str, c)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in chunks]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="work directory (default: system temp); the disk under test")
    args = ap.parse_args()
    load0 = f"{os.getloadavg()[0]:.1f}"
    root = Path(tempfile.mkdtemp(prefix="dicom-bench-", dir=args.dir))
    try:
        files = make_ct_series(root / "ct", args.slices)
        mb = sum(f.stat().st_size for f in files) / 1e6
        results: dict[tuple[str, int], float] = {}
        # Repeats are the outer loop so that load from other processes hits every receiver alike.
        for rep in range(args.repeat):
            for kind in (OurScp, StoreScp, Orthanc):
                for assoc in (1, 4):
                    work = root / f"{kind.__name__}-{assoc}-{rep}"
                    work.mkdir()
                    receiver = kind(work)
                    try:
                        secs = send(files, receiver.port, assoc)
                    finally:
                        receiver.stop()
                        shutil.rmtree(work, ignore_errors=True)
                    key = (kind.name, assoc)
                    results[key] = min(results.get(key, float("inf")), secs)
        print(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f}")
        print(f"{args.slices} instances, {mb:.1f} MB, 512x512 16-bit CT, explicit VR LE; best of {args.repeat}; "
              f"{os.cpu_count()} CPUs")
        head = f"{'receiver':22s} {'assoc':>5s} {'seconds':>8s} {'inst/s':>8s} {'MB/s':>7s} {'vs storescp':>11s} {'vs Orthanc':>10s}"
        print(head)
        print("-" * len(head))
        for (name, assoc), secs in results.items():
            rate = args.slices / secs
            vs_dcmtk = results[(StoreScp.name, assoc)] / secs
            vs_orthanc = results[(Orthanc.name, assoc)] / secs
            print(f"{name:22s} {assoc:5d} {secs:8.2f} {rate:8.1f} {mb / secs:7.1f} {vs_dcmtk:10.2f}x {vs_orthanc:9.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
