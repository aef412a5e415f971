"""Engine overhead: a 5-operator pipeline of no-op operators, N jobs (default 100).

Prints, for the same run:
- baseline: median wall time of the 5 no-op operator processes run back to back by hand
  (subprocess, no platform) — what the operators themselves cost;
- per job: median of (job created → STOPPED) and of the operators' own run time (sum of their
  started → stopped), and their difference, the engine overhead;
- throughput: jobs/s from the first job created to the last one stopped.

    python bench/engine_overhead.py [--jobs 100] [--workers 2] [--database sqlite|URL]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform
from common import free_port, seconds  # noqa: E402

NOOP = Path(__file__).resolve().parent.parent / "tests" / "platform" / "operators" / "noop.py"
OPERATORS = 5


def pipeline_text() -> str:
    ops = []
    for i in range(OPERATORS):
        ops.append({
            "name": f"op{i}",
            "container": {"image": "claractl/noop", "command": ["python", str(NOOP)]},
            "input": [{"path": "/input"} if i == 0 else {"from": f"op{i - 1}", "path": "/input"}],
            "output": [{"path": "/output"}],
            "requests": {"cpu": 0.5, "memory": 64},
        })
    return yaml.safe_dump({"api-version": "0.4.0", "name": "noop5", "operators": ops}, sort_keys=False)


def baseline(runs: int = 10) -> float:
    """Median time of 5 no-op processes run back to back, no platform."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(OPERATORS):
            subprocess.run([sys.executable, str(NOOP)], check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()

    base = baseline()
    with tempfile.TemporaryDirectory(prefix="clara-bench-") as tmp:
        config = PlatformConfig(state_dir=str(Path(tmp) / "state"))
        config.api.port = free_port()
        config.api.workers = args.workers
        config.store.database = args.database
        config.dicom.enabled = config.inference.enabled = config.render.enabled = False
        platform = Platform(config)
        platform.start()
        try:
            client = PlatformClient(config.api_url)
            client.put_pipeline("noop5", pipeline_text())
            ids = []
            for i in range(args.jobs):
                job = client.create_job("noop5", name=f"bench-{i}")
                client.start_job(job["id"])
                ids.append(job["id"])
            jobs = [client.wait_for_job(j, timeout=3600, interval=0.1) for j in ids]
        finally:
            platform.stop()

    bad = [j for j in jobs if j["status"] != "HEALTHY"]
    if bad:
        sys.exit(f"{len(bad)} job(s) did not finish HEALTHY, e.g. {bad[0]['message']}")
    totals = [seconds(j["created_at"], j["stopped_at"]) for j in jobs]
    op_time = [sum(seconds(o["started_at"], o["stopped_at"]) for o in j["operators"]) for j in jobs]
    overhead = [t - o for t, o in zip(totals, op_time)]
    # Created → STOPPED includes queueing behind earlier jobs; queue-free overhead is started → STOPPED.
    run_overhead = [seconds(j["started_at"], j["stopped_at"]) - o for j, o in zip(jobs, op_time)]
    span = seconds(min(j["created_at"] for j in jobs), max(j["stopped_at"] for j in jobs))

    print(f"engine overhead: {args.jobs} jobs x {OPERATORS} no-op operators, workers={args.workers}, "
          f"database={'sqlite' if args.database == 'sqlite' else 'postgresql'}")
    print(f"  baseline  5 no-op processes back to back (no platform)   median {base * 1000:8.1f} ms")
    print(f"  job       created -> STOPPED                             median {statistics.median(totals) * 1000:8.1f} ms")
    print(f"  operators sum of operator run times per job              median {statistics.median(op_time) * 1000:8.1f} ms")
    print(f"  overhead  (created -> STOPPED) - operator time           median {statistics.median(overhead) * 1000:8.1f} ms")
    print(f"  overhead  (admitted -> STOPPED) - operator time          median {statistics.median(run_overhead) * 1000:8.1f} ms")
    print(f"  throughput                                               {args.jobs / span:8.2f} jobs/s")


if __name__ == "__main__":
    main()
