"""High availability on the test cluster, beside today's single Recreate pod, in one run:

1. **A rolling apply under load.** A modality sends a small study (3 instances) every second,
   one association each (dcmtk storescu; a refused study is sent again after 1 s). `claractl apply`
   changes the DICOM adapter's settings, which rolls every platform pod. Counted from the apply's
   start until 10 s after it returned: associations succeeded / refused (A-ASSOCIATE-RJ or no
   association) / failed (broken after acceptance), and the longest time without a successful
   store.
2. **Engine failover.** While jobs run, the container that schedules (the engine leader; the one
   platform pod) is killed (kill -9; it restarts in its pod), then, separately, its node is "lost"
   (the process frozen with SIGSTOP and the pod deleted at once; a new pod replaces it): seconds
   until the next job is admitted, and how many jobs ran twice (re-queued, not re-attached).

Baseline: the same project without `high-availability` (one pod, SQLite, strategy Recreate), in
the same run. Each setup gets a namespace of its own, deleted at the end.

    eval "$(scripts/test-cluster.sh)"          # cluster up, images loaded
    python bench/kube_ha.py [--interval 1.0] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from typer.testing import CliRunner  # noqa: E402

from claractl.cli.main import app  # noqa: E402
from claractl.kube.client import KINDS, Rest, load_api_client  # noqa: E402
from tools.ha.cluster import (CALLED_AE, CALLING_AE, Pacs, kill_container, leader_pod,  # noqa: E402
                              wait_for, write_project)
from tools.ha.sender import SteadySender  # noqa: E402

KUBECONFIG = os.environ.get("CLARA_TEST_KUBECONFIG") or "/tmp/claractl-kube/kubeconfig"


def cli(project: Path, *args: str, check: bool = True) -> str | None:
    result = CliRunner().invoke(app, ["-C", str(project), *args], env={"CI": "true", "COLUMNS": "200"})
    if result.exit_code != 0:
        if check:
            raise SystemExit(f"claractl {' '.join(args)} failed:\n{result.output}")
        return None
    return result.output


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def started(job: dict) -> float | None:
    if not job.get("started_at"):
        return None
    t = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


class Setup:
    def __init__(self, rest: Rest, work: Path, high_availability: bool, interval: float) -> None:
        self.rest, self.ha = rest, high_availability
        self.name = "high availability" if high_availability else "one Recreate pod"
        self.namespace = f"bench-ha-{uuid.uuid4().hex[:8]}"
        rest.call("POST", KINDS["Namespace"].collection(None), "create namespace",
                  body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})
        self.pacs = Pacs(work / f"pacs-{self.namespace}", free_port())
        self.folder = work / self.namespace
        self.project = write_project(self.folder, self.namespace, self.pacs.port, high_availability=high_availability)
        self.interval, self.work = interval, work
        self.figures: dict[str, object] = {}

    def close(self, keep: bool) -> None:
        self.pacs.close()
        if not keep:
            self.rest.call("DELETE", f"{KINDS['Namespace'].collection(None)}/{self.namespace}", "delete namespace",
                           body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})

    def sender(self) -> SteadySender:
        service = self.rest.get(KINDS["Service"], self.namespace, "clara-dicom-adapter")["spec"]
        return SteadySender(service["clusterIP"], service["ports"][0]["port"], CALLED_AE, CALLING_AE,
                            self.work / f"studies-{self.namespace}-{time.monotonic_ns()}", interval=self.interval)

    def jobs(self) -> list[dict]:
        """[] while the platform API does not answer (the one pod restarting)."""
        out = cli(self.project, "jobs", "list", "-o", "json", "--limit", "2000", check=False)
        return json.loads(out) if out else []

    def rolling_apply(self) -> None:
        sender = self.sender().start()
        time.sleep(10)
        write_project(self.folder, self.namespace, self.pacs.port, high_availability=self.ha, max_associations=30)
        t0 = time.time()
        cli(self.project, "apply", "--auto-approve")
        t1 = time.time()
        time.sleep(10)
        sender.stop(settle=60)
        until = t1 + 10
        self.figures["apply_seconds"] = round(t1 - t0, 1)
        self.figures.update(sender.counts(t0, until))
        self.figures["longest_gap"] = round(sender.longest_gap(t0, until), 1)
        self.figures["baseline_gap"] = round(sender.longest_gap(None, t0), 1)   # before the apply

    def failover(self, how: str) -> None:
        """how: "kill" (kill -9, the container restarts in its pod) or "delete" (as when its node is
        lost: the process frozen, the pod deleted at once; a new pod replaces it)."""
        sender = self.sender().start()
        wait_for(lambda: any(j["state"] == "RUNNING" for j in self.jobs()), 120, "a running job", every=0.5)
        pods = [p for p in self.rest.list(KINDS["Pod"], self.namespace, "app.kubernetes.io/name=platform")
                if not p["metadata"].get("deletionTimestamp")]
        pod = (wait_for(lambda: leader_pod(self.rest, self.namespace), 30, "the engine leader", every=0.2) if self.ha
               else pods[0]["metadata"]["name"])
        kill_container(self.rest, self.namespace, pod, lose_node=how == "delete")
        killed = time.time()
        admitted = wait_for(lambda: min((t for t in map(started, self.jobs()) if t and t > killed), default=None),
                            300, "the next job admitted", every=0.5)
        sender.stop(settle=60)
        before = self.figures.get("jobs_run_twice", 0)
        done = wait_for(lambda: (lambda js: js if js and all(j["state"] == "STOPPED" for j in js) else None)(self.jobs()),
                        300, "every job to finish", every=2)
        counts = sender.counts()
        self.figures[f"{how}_seconds"] = round(admitted - killed, 1)
        self.figures[f"{how}_refused_failed"] = f"{counts['refused']} / {counts['failed']}"
        self.figures[f"{how}_twice"] = sum(j["attempts"] > 1 for j in done) - before
        self.figures["jobs_run_twice"] = before + self.figures[f"{how}_twice"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between studies (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces")
    args = parser.parse_args()
    os.environ["KUBECONFIG"] = KUBECONFIG
    rest = Rest(load_api_client(kubeconfig=KUBECONFIG))
    with tempfile.TemporaryDirectory(prefix="kube-ha-") as tmp:
        setups = [Setup(rest, Path(tmp), ha, args.interval) for ha in (False, True)]
        try:
            for setup in setups:
                t0 = time.time()
                cli(setup.project, "apply", "--auto-approve")
                setup.figures["first_apply_seconds"] = round(time.time() - t0, 1)
                setup.rolling_apply()
                setup.failover("kill")
                setup.failover("delete")
                print(f"{setup.name}: {setup.figures}", file=sys.stderr)
        finally:
            for setup in setups:
                setup.close(args.keep)
    rows = [("first apply, empty namespace → Ready (s)", "first_apply_seconds"),
            ("apply that rolls every platform pod (s)", "apply_seconds"),
            ("  associations succeeded", "succeeded"), ("  associations refused (no data sent)", "refused"),
            ("  associations failed (broken after acceptance)", "failed"),
            ("  longest time without a successful store (s)", "longest_gap"),
            ("  the same before the apply (s)", "baseline_gap"),
            ("engine container killed (kill -9) → next job admitted (s)", "kill_seconds"),
            ("  associations refused / failed meanwhile", "kill_refused_failed"),
            ("  jobs run twice", "kill_twice"),
            ("engine node lost (frozen, pod deleted) → next job admitted (s)", "delete_seconds"),
            ("  associations refused / failed meanwhile", "delete_refused_failed"),
            ("  jobs run twice", "delete_twice")]
    print(f"{'':62} {setups[0].name:>18} {setups[1].name:>18}")
    for label, key in rows:
        cells = [str(s.figures.get(key, "")) for s in setups]
        print(f"{label:62} {cells[0]:>18} {cells[1]:>18}")
    print(f"(a study of 3 instances every {args.interval:g} s; apply window = apply + 10 s)")


if __name__ == "__main__":
    main()
