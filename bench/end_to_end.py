"""End to end on the local platform: a CT series group closes → the DICOM SEG is acknowledged by the
destination. Splits the time into operator compute and platform overhead (target overhead ≤ 1 s).

For each run a new phantom study (256×256×100) is sent with dcmtk `storescu` to the AE ORGANSEG of
an in-process platform (store, engine, DICOM adapter, embedded inference); results go to a dcmtk
`storescp`. Measured from the platform's own records:
- group closed   = the job's created_at (the adapter creates the job when the group closes);
- compute        = the sum of the operators' started → stopped (the operators run as a chain);
- acknowledged   = the export task's SUCCEEDED time (after the destination's C-STORE response).
Baseline, same run: the same operators run by hand back to back (subprocesses, no platform) plus a
storescu of the SEG to the same storescp — the work without the platform around it.

    python bench/end_to_end.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from phantom import generate_phantom, write_study  # noqa: E402

from claractl.platform.client import PlatformClient  # noqa: E402
from claractl.platform.config import PlatformConfig  # noqa: E402
from claractl.platform.server import Platform  # noqa: E402
from common import free_port, seconds  # noqa: E402

MODEL = REPO / "blueprints" / "ct-segmentation" / "models" / "ct-organs"
PIPELINE = REPO / "blueprints" / "ct-segmentation" / "pipelines" / "ct-organ-seg.yaml.j2"   # YAML; only a comment is templated
ENV = {**os.environ, "TCP_NODELAY": "1"}


def by_hand(study: Path, work: Path, inference: str, pacs_port: int) -> float:
    """The pipeline's work without the platform: operators back to back, then one storescu."""
    def op(module: str, *args: str) -> None:
        subprocess.run([sys.executable, "-m", f"claractl_operators.{module}", *args], check=True, env={
            **ENV, "NVIDIA_TRITON_HTTPURI": inference}, capture_output=True)

    t0 = time.perf_counter()
    op("dicom_reader", "--input", str(study), "--output", str(work / "volume"))
    op("ai_inference", "--input", str(work / "volume"), "--output", str(work / "labels"), "--model", "ct-organs")
    op("dicom_seg_writer", "--dicom", str(study), "--labels", str(work / "labels"), "--output", str(work / "seg"),
       "--model", "ct-organs")
    subprocess.run(["/usr/bin/storescu", "-R", "-aec", "PACS1", "127.0.0.1", str(pacs_port), str(work / "seg" / "seg.dcm")],
                   check=True, env=ENV, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clara-e2e-bench-") as tmp:
        tmp = Path(tmp)
        studies = []
        for seed in range(args.runs):
            write_study(generate_phantom(seed=100 + seed), tmp / f"study{seed}")
            studies.append(tmp / f"study{seed}" / "dicom")

        pacs_port = free_port()
        (tmp / "pacs").mkdir()
        pacs = subprocess.Popen(["/usr/bin/storescp", "--aetitle", "PACS1", "--output-directory", str(tmp / "pacs"),
                                 str(pacs_port)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        config = PlatformConfig(state_dir=str(tmp / "state"))
        config.api.port, config.dicom.port = free_port(), free_port()
        config.inference.http_port, config.inference.grpc_port = free_port(), free_port()
        config.render.enabled = False
        platform = Platform(config)
        platform.start()
        try:
            c = PlatformClient(config.api_url, token=platform.token)
            c.put_model("ct-organs", MODEL)
            c.put_pipeline("ct-organ-seg", PIPELINE.read_text())
            c.put_ae_title("ORGANSEG", ["ct-organ-seg"], group_by="0020,000E", timeout=1)
            c.put_source("pacs", "PACS1", "127.0.0.1")
            c.put_destination("pacs", "PACS1", "127.0.0.1", pacs_port)
            time.sleep(2.5)                          # the adapter re-reads its AE titles every 2 s
            rows = []
            for i, study in enumerate(studies):
                subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "ORGANSEG", "+sd", "127.0.0.1",
                                str(config.dicom.port), str(study)], check=True, env=ENV, capture_output=True)
                job = None
                while job is None:
                    jobs = c.list_jobs(limit=100)
                    job = next((j for j in jobs if j["id"] not in {r[0] for r in rows}), None)
                    time.sleep(0.2)
                job = c.wait_for_job(job["id"], timeout=300, interval=0.1)
                task = None
                while task is None or task["state"] not in ("SUCCEEDED", "FAILED"):
                    time.sleep(0.1)
                    task = next(t for t in c.list_export_tasks(job_id=job["id"]) if t["agent"] == "ClaraSCU")
                if task["state"] != "SUCCEEDED" or job["status"] != "HEALTHY":
                    sys.exit(f"run {i}: job {job['status']}, export {task['state']}: {task['message']}")
                total = seconds(job["created_at"], task["updated_at"])
                compute = sum(seconds(o["started_at"], o["stopped_at"]) for o in job["operators"])
                rows.append((job["id"], total, compute))
            inference = f"127.0.0.1:{config.inference.http_port}"
            hand = [by_hand(s, tmp / f"hand{i}", inference, pacs_port) for i, s in enumerate(studies)]
        finally:
            platform.stop()
            pacs.terminate()

    total = statistics.median(r[1] for r in rows)
    compute = statistics.median(r[2] for r in rows)
    overhead = statistics.median(r[1] - r[2] for r in rows)
    print(f"end to end, {args.runs} runs of a 256x256x100 CT (medians)")
    print(f"  group closed -> SEG acknowledged            {total:7.2f} s")
    print(f"    operator compute (platform records)        {compute:7.2f} s")
    print(f"    platform overhead                          {overhead:7.2f} s   (target <= 1 s)")
    print(f"  baseline: same operators + storescu by hand  {statistics.median(hand):7.2f} s   "
          f"(ratio {total / statistics.median(hand):.2f}x)")


if __name__ == "__main__":
    main()
