"""Ingest throughput: our SCP vs dcmtk storescp vs Orthanc, same 200-slice CT, same storescu.

    python bench/dicom_ingest.py [--slices 200] [--repeat 3] [--only ours] [--assoc 1] [--tls]

Prints a table (instances/s, MB/s, ratios to storescp and to Orthanc) for 1 and 4 parallel
associations (4 storescu processes, each sending a quarter of the files). Our SCP runs as its own
process (`python -m claractl.platform.dicom`) and fsyncs every instance before Success;
storescp and Orthanc do not fsync. All dcmtk/Orthanc processes run with TCP_NODELAY=1.
Median of `--repeat` runs per cell (the machine is shared, so also the best); each run starts
from an empty receiver. `--only ours` runs just our SCP (ratios then print as n/a). For an A/B of
two SCP variants, `BENCH_SCP_CMD` replaces `-m claractl.platform.dicom` (a script that patches
something and then runs that module) or `PYTHONPATH=<old checkout>` runs an older tree. The SCP's
CPU time per instance is printed too: it is the figure least disturbed by other load.
`--tls` adds DICOM over TLS for our SCP (its TLS port) and storescp (`+tls`), storescu sending
with `+tls` and a client certificate (test CA made with openssl): the price of TLS, against
plain, and against dcmtk's own TLS, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claractl.platform.config import PlatformConfig  # noqa: E402
from claractl.platform.dicom.synthetic import make_ct_series  # noqa: E402
from claractl.platform.store import Store  # noqa: E402
from claractl.platform.store.models import AETitle, Pipeline, Source  # noqa: E402
from common import free_port  # noqa: E402
from tests.dicom.tls_certs import make_pki  # noqa: E402

ENV = {**os.environ, "TCP_NODELAY": "1"}
STORESCU = "/usr/bin/storescu"
AE = "BENCH"


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

    def __init__(self, work: Path, pki=None) -> None:
        self.config = PlatformConfig(state_dir=str(work / "state"))
        self.config.dicom.port = free_port()
        if pki is not None:
            self.config.dicom.tls_port = free_port()
            self.config.dicom.tls_certificate, self.config.dicom.tls_private_key = str(pki.server.cert), str(pki.server.key)
            self.config.dicom.tls_ca_certificates = str(pki.ca)
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
        self.proc = subprocess.Popen([sys.executable, *os.environ.get("BENCH_SCP_CMD", "-m claractl.platform.dicom").split(), "--state-dir",
                                      str(self.config.root), "--no-export"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()
        self.port = self.config.dicom.tls_port or self.config.dicom.port
        if pki is not None:
            wait_port(self.port)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the SCP process used so far: robust to load from others."""
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class StoreScp:
    name = "dcmtk storescp"

    def __init__(self, work: Path, pki=None) -> None:
        out = work / "out"
        out.mkdir()
        self.port = free_port()
        tls = ["+tls", str(pki.server.key), str(pki.server.cert), "+cf", str(pki.ca), "-vc"] if pki else []
        self.proc = subprocess.Popen(["/usr/bin/storescp", *tls, "--fork", "-od", str(out), "+xa", str(self.port)],
                                     env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Orthanc:
    name = "Orthanc"

    def __init__(self, work: Path, pki=None) -> None:
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


def send(files: list[Path], port: int, associations: int, pki=None) -> float:
    chunks = [files[i::associations] for i in range(associations)]
    tls = ["+tls", str(pki.client.key), str(pki.client.cert), "+cf", str(pki.ca)] if pki else []
    start = time.perf_counter()
    procs = [subprocess.Popen([STORESCU, *tls, "-aec", AE, "127.0.0.1", str(port), *map(str, c)], env=ENV,
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
    ap.add_argument("--only", default="ours,storescp,orthanc", help="comma list of receivers to run")
    ap.add_argument("--assoc", default="1,4", help="comma list of parallel association counts")
    ap.add_argument("--tls", action="store_true", help="also our SCP and storescp over DICOM TLS")
    args = ap.parse_args()
    load0 = f"{os.getloadavg()[0]:.1f}"
    root = Path(tempfile.mkdtemp(prefix="dicom-bench-", dir=args.dir))
    try:
        files = make_ct_series(root / "ct", args.slices)
        mb = sum(f.stat().st_size for f in files) / 1e6
        kinds = [(k, None) for k in ({"ours": OurScp, "storescp": StoreScp, "orthanc": Orthanc}[k]
                                     for k in args.only.split(","))]
        if args.tls:
            pki = make_pki(root / "pki")
            kinds += [(k, pki) for k, _ in kinds if k is not Orthanc]
        assocs = [int(a) for a in args.assoc.split(",")]
        runs: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        # Repeats are the outer loop so that load from other processes hits every receiver alike.
        for rep in range(args.repeat):
            for kind, pki in kinds:
                name = kind.name + (" TLS" if pki else "")
                for assoc in assocs:
                    work = root / f"{kind.__name__}-{assoc}-{rep}-{'tls' if pki else 'plain'}"
                    work.mkdir()
                    receiver = kind(work, pki)
                    try:
                        cpu0 = receiver.cpu_seconds() if hasattr(receiver, "cpu_seconds") else None
                        secs = send(files, receiver.port, assoc, pki)
                        if cpu0 is not None:
                            cpu.setdefault((name, assoc), []).append(receiver.cpu_seconds() - cpu0)
                    finally:
                        receiver.stop()
                        shutil.rmtree(work, ignore_errors=True)
                    runs.setdefault((name, assoc), []).append(secs)
        print(f"load average before/after: {load0} / {os.getloadavg()[0]:.1f}")
        print(f"{args.slices} instances, {mb:.1f} MB, 512x512 16-bit CT, explicit VR LE; median (and best) of "
              f"{args.repeat}; {os.cpu_count()} CPUs")
        results = {k: statistics.median(v) for k, v in runs.items()}
        head = (f"{'receiver':26s} {'assoc':>5s} {'seconds':>8s} {'inst/s':>8s} {'best':>7s} {'MB/s':>7s} "
                f"{'vs storescp':>11s} {'vs Orthanc':>10s}")
        print(head)
        print("-" * len(head))

        def ratio(base: tuple[str, int], secs: float) -> str:
            return f"{results[base] / secs:10.2f}x" if base in results else f"{'n/a':>11s}"

        for (name, assoc), secs in results.items():
            best = args.slices / min(runs[(name, assoc)])
            tls = " TLS" if name.endswith(" TLS") else ""      # TLS rows compare with storescp over TLS
            print(f"{name:26s} {assoc:5d} {secs:8.2f} {args.slices / secs:8.1f} {best:7.1f} {mb / secs:7.1f} "
                  f"{ratio((StoreScp.name + tls, assoc), secs)} {ratio((Orthanc.name, assoc), secs)}")
            if tls and (name[:-4], assoc) in results:
                print(f"{'':26s} {'':5s} TLS costs {secs / results[(name[:-4], assoc)]:.2f}x the time of plain")
        for (name, assoc), used in cpu.items():
            print(f"{name} CPU per instance, {assoc} assoc: {statistics.median(used) * 1000 / args.slices:.2f} ms "
                  "(median; the receive path's cost independent of load from others)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
