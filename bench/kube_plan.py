"""Reading actual state on Kubernetes: requests and seconds for 20, 200 and 2,000 objects.

    python bench/kube_plan.py [--sizes 20,200,2000] [--repeat 3]

Against the API server stand-in (tests/kubernetes/standin, real HTTP through the official
`kubernetes` client), run in its own process so server and client do not share a GIL;
`--latency-ms` adds a round-trip time per request (a real cluster is not on localhost). The project's objects are spread over the inventory kinds (ConfigMaps,
Secrets, Services, Deployments, …) and labelled as claractl labels them; an unrelated object of
another project sits next to each. Measured per size, best of --repeat:

- inventory: `read_inventory` (one labelled list per kind, in parallel) + the per-object
  kubectl-diff-style comparison (`field_changes`) → requests, seconds;
- baseline, same run: one GET per desired object (what an object-by-object reader does).

The read must grow with the number of kinds, not the number of objects. Also prints the Helm
render time of the four service charts (which Helm path: binary or Go SDK).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "kubernetes"))

import kubernetes.client as k8s  # noqa: E402

from claractl.project.model import Project, Target  # noqa: E402
from claractl.targets.kubernetes import KINDS, Rest, desired_objects, field_changes, read_inventory  # noqa: E402
from claractl.targets.kubernetes import helm  # noqa: E402
from claractl.kube.client import INVENTORY_KINDS  # noqa: E402
from claractl.targets.kubernetes.manifests import label_inventory  # noqa: E402
from standin import StandIn  # noqa: E402
from standin.resources import BY_PATH  # noqa: E402

NS = "bench"
PROJECT = "bench-project"
KIND_CYCLE = ["ConfigMap", "Secret", "Service", "ServiceAccount", "Deployment", "Role"]


def make_object(kind: str, n: int) -> dict:
    name = f"obj-{n:05d}"
    meta = {"name": name, "namespace": NS, "labels": {"app": name}}
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "data": {"n": str(n)}}
    if kind == "Secret":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque", "data": {"k": "dg=="}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]}}
    if kind == "ServiceAccount":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "Role":
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}}


def resource_of(kind: str):
    k = KINDS[kind]
    group, _, version = k.api_version.rpartition("/")
    return BY_PATH[(group, version, k.plural)]


def populate(server: StandIn, size: int) -> list[dict]:
    """Store the project's objects (and as many of another project) directly, not timed."""
    desired = []
    for n in range(size):
        kind = KIND_CYCLE[n % len(KIND_CYCLE)]
        mine = label_inventory(make_object(kind, n), PROJECT, "bench", NS)
        other = label_inventory(make_object(kind, n + 100000), "someone-else", "bench", NS)
        for obj in (mine, other):
            server.store.patch(resource_of(kind), NS, obj["metadata"]["name"], "application/apply-patch+yaml",
                               obj, "claractl", False, False)
        desired.append(mine)
    return desired


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def serve(size: int, latency_ms: float) -> None:
    """Child process: a populated stand-in; prints its URL, runs until stdin closes."""
    with StandIn() as server:
        server.create_namespace(NS)
        populate(server, size)
        server.latency = latency_ms / 1000
        print(server.url, flush=True)
        sys.stdin.read()


class CountingRest(Rest):
    """Counts the API requests the client makes."""

    def __init__(self, api_client) -> None:
        super().__init__(api_client)
        self.count = 0
        self._lock = threading.Lock()
        original = api_client.call_api

        def counted(*args, **kwargs):
            with self._lock:
                self.count += 1
            return original(*args, **kwargs)
        api_client.call_api = counted


def measure(size: int, repeat: int, latency_ms: float) -> dict:
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(size), "--latency-ms", str(latency_ms)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        desired = [label_inventory(make_object(KIND_CYCLE[n % len(KIND_CYCLE)], n), PROJECT, "bench", NS)
                   for n in range(size)]
        cfg = k8s.Configuration()
        cfg.host = url
        rest = CountingRest(k8s.ApiClient(cfg))

        def inventory_plan():
            live = {(o["kind"], o["metadata"]["name"]): o for o in read_inventory(rest, NS, PROJECT)}
            changes = [field_changes(d, live.get((d["kind"], d["metadata"]["name"]))) for d in desired]
            assert len(live) == size and not any(changes), "stand-in state does not match the desired objects"

        def per_object():
            for d in desired:
                rest.get(KINDS[d["kind"]], NS, d["metadata"]["name"])

        rest.count = 0
        inventory_plan()
        inv_requests = rest.count
        rest.count = 0
        per_object()
        get_requests = rest.count
        return {"size": size, "inv_s": timed(inventory_plan, repeat), "inv_req": inv_requests,
                "get_s": timed(per_object, repeat), "get_req": get_requests}
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def helm_render_time(repeat: int) -> float:
    project = Project(name="radiology-ai", path=ROOT / "clara.yaml", target=Target(type="kubernetes"),
                      services={"triton": {"gpus": 1}})
    desired_objects(project)     # warm-up (loads the Go library once)
    return timed(lambda: desired_objects(project), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,2000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added round-trip time per request")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.latency_ms)
    print(f"stand-in latency per request: {args.latency_ms:g} ms")
    print(f"inventory kinds listed per read: {len(INVENTORY_KINDS)}")
    print(f"{'objects':>8} | {'inventory+diff s':>16} {'requests':>9} | {'GET per object s':>16} {'requests':>9} | speed-up")
    for size in [int(s) for s in args.sizes.split(",")]:
        r = measure(size, args.repeat, args.latency_ms)
        print(f"{r['size']:>8} | {r['inv_s']:>16.3f} {r['inv_req']:>9} | {r['get_s']:>16.3f} {r['get_req']:>9} | "
              f"{r['get_s'] / r['inv_s']:.1f}x")
    print(f"helm render of the 4 service charts ({helm.backend()}): {helm_render_time(args.repeat) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
