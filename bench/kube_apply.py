"""The ct-segmentation project on the real test cluster: how long `apply` takes from an empty
namespace to everything Ready (split into Helm render / server-side apply / waiting / platform
objects), how long a `plan` against the converged cluster takes beyond process start, and how
long a CT study takes from association to the SEG at the PACS — each beside a baseline from the
same run.

    eval "$(scripts/test-cluster.sh)"          # cluster up, images loaded
    python bench/kube_apply.py [--runs 3] [--plans 10]

Baselines:
- apply: the same rendered manifests with `kubectl apply --server-side` + `kubectl wait` for the
  Deployments (what a user scripts by hand; no platform objects, no drift checks);
- plan: `claractl version` (the process start, imports of the CLI);
- study → SEG: the same project and study on the local target (one machine, no cluster).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "kubernetes"))
from common import free_port  # noqa: E402

CLARACTL = [sys.executable, "-m", "claractl"]
KUBECONFIG = os.environ.get("CLARA_TEST_KUBECONFIG") or "/tmp/claractl-kube/kubeconfig"
KUBECTL = str(Path(KUBECONFIG).parent / "bin" / "kubectl")
HOST_FROM_PODS = os.environ.get("CLARA_TEST_HOST_FROM_PODS", "10.42.0.1")
ENV = {**os.environ, "KUBECONFIG": KUBECONFIG, "TCP_NODELAY": "1", "CI": "true"}


def run(*cmd: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(KUBECTL, "--kubeconfig", KUBECONFIG, *args, check=check)


def project(root: Path, target: str, namespace: str = "", pacs_port: int = 4242, ports: dict | None = None) -> Path:
    path = root / f"ct-{target}"
    run(*CLARACTL, "init", str(path), "--blueprint", "ct-segmentation")
    text = (path / "clara.yaml").read_text()
    host = HOST_FROM_PODS if target == "kubernetes" else "127.0.0.1"
    if target == "kubernetes":
        text = text.replace("target:\n  type: local\n  local: {state-dir: .clara}",
                            f"target:\n  type: kubernetes\n  kubernetes: {{namespace: {namespace}}}")
    for key, port in (ports or {}).items():
        text = re.sub(rf"{key}: \d+", f"{key}: {port}", text, count=1)
    text = text.replace("host: 127.0.0.1", f"host: {host}")      # sources and destinations
    text = re.sub(r"port: 4242\}", f"port: {pacs_port}}}", text)
    (path / "clara.yaml").write_text(text)
    return path


class Phases:
    """Wall time per phase: the union of the intervals spent in it (changes run in parallel)."""

    def __init__(self) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self.lock = threading.Lock()

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            with self.lock:
                self.intervals.setdefault(phase, []).append((start, time.perf_counter()))

    @contextmanager
    def wrapping(self, wraps: list[tuple[object, str, str]]):
        """Time calls of module.name as phase, for the duration of the block."""
        originals = [(module, name, getattr(module, name)) for module, name, _ in wraps]
        for (module, name, original), (_, _, phase) in zip(originals, wraps):
            def wrapped(*args, _original=original, _phase=phase, **kwargs):
                with self.timed(_phase):
                    return _original(*args, **kwargs)
            setattr(module, name, wrapped)
        try:
            yield
        finally:
            for module, name, original in originals:
                setattr(module, name, original)

    def seconds(self, phase: str) -> float:
        total, end = 0.0, 0.0
        for a, b in sorted(self.intervals.get(phase, [])):
            a = max(a, end)
            if b > a:
                total += b - a
                end = b
        return total


def apply_in_process(path: Path) -> dict[str, float]:
    """`claractl apply` through the Python API with each phase's time recorded."""
    os.environ["KUBECONFIG"] = KUBECONFIG
    from claractl.project import load_project
    from claractl.targets import execute, get_target, make_plan
    from claractl.targets.kubernetes import target as target_module
    from claractl.targets.platform_objects import PlatformObjects

    phases = Phases()
    with phases.wrapping([(target_module, "desired_objects", "render"),
                          (target_module, "apply_object", "server-side apply"),
                          (target_module, "wait_ready", "wait"), (target_module, "wait_gone", "wait"),
                          (PlatformObjects, "apply_platform_change", "platform objects")]):
        start = time.perf_counter()
        target = get_target(load_project(path / "clara.yaml"))
        result = execute(target, make_plan(target))
        total = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"apply failed: {result.failed}")
    return {"total": total, **{p: phases.seconds(p) for p in ("render", "server-side apply", "wait", "platform objects")}}


def by_hand(path: Path, namespace: str) -> float:
    """Baseline: the rendered manifests with kubectl server-side apply, then wait for the Deployments."""
    manifests = path / "rendered"
    run(*CLARACTL, "-C", str(path), "render", str(manifests))
    start = time.perf_counter()
    files = sorted(manifests.glob("*.yaml"))
    # claractl creates the API token Secret itself; a hand-made run needs one too.
    kubectl("-n", namespace, "create", "secret", "generic", "clara-platform-api-token", f"--from-literal=token={uuid.uuid4()}")
    for f in files:
        kubectl("apply", "--server-side", "-n", namespace, "-f", str(f))
    kubectl("-n", namespace, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=300s")
    return time.perf_counter() - start


def namespace() -> str:
    name = f"kube-apply-bench-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    return name


def drop(name: str) -> None:
    """Delete a namespace and wait: its pods' CPU requests must not crowd out the next run's."""
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=180s", check=False)


def study_to_seg(path: Path, host: str, port: int, pacs_dir: Path, study: Path) -> float:
    """Association start → the SEG written by the PACS (storescp writes it when it acknowledges)."""
    before = set(pacs_dir.glob("*.dcm"))
    start = time.perf_counter()
    run("/usr/bin/storescu", "-aet", "PACS1", "-aec", "ORGANSEG", "+sd", host, str(port), str(study))
    deadline = time.monotonic() + 300
    while not set(pacs_dir.glob("*.dcm")) - before:
        if time.monotonic() > deadline:
            raise SystemExit(f"no SEG within 300 s (see `claractl -C {path} jobs list`)")
        time.sleep(0.1)
    return time.perf_counter() - start


def median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="applies (and studies) per side")
    parser.add_argument("--plans", type=int, default=10, help="plans timed against the converged cluster")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="claractl-bench-kube-"))
    pacs_port = free_port()
    pacs_dir = work / "pacs"
    pacs_dir.mkdir()
    pacs = subprocess.Popen(["/usr/bin/storescp", "--aetitle", "PACS1", "--output-directory", str(pacs_dir),
                             "--filename-extension", ".dcm", str(pacs_port)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    study = work / "study"
    run(sys.executable, str(REPO / "tools" / "phantom.py"), "--out", str(study), "--seed", "7")
    namespaces: list[str] = []
    applies, hands, plans, starts, cluster_segs, local_segs = [], [], [], [], [], []
    try:
        # One namespace at a time: the node (2 CPUs) holds one platform + inference service.
        for i in range(args.runs):
            hand_ns = namespace()
            hands.append(by_hand(project(work / f"hand{i}", "kubernetes", hand_ns, pacs_port), hand_ns))
            drop(hand_ns)
            ns = namespace()
            namespaces.append(ns)
            applies.append(apply_in_process(project(work / f"run{i}", "kubernetes", ns, pacs_port)))
            if i < args.runs - 1:
                drop(ns)
            print(f"apply run {i + 1}: claractl {applies[-1]['total']:.1f} s, by hand {hands[-1]:.1f} s", flush=True)
        converged = work / f"run{args.runs - 1}" / "ct-kubernetes"
        for _ in range(args.plans):
            t = time.perf_counter()
            run(*CLARACTL, "-C", str(converged), "plan", "--detailed-exitcode")
            plans.append(time.perf_counter() - t)
            t = time.perf_counter()
            run(*CLARACTL, "version")
            starts.append(time.perf_counter() - t)
        report_apply_and_plan(args, applies, hands, plans, starts)
        adapter = kubectl("-n", namespaces[-1], "get", "svc", "clara-dicom-adapter",
                          "-o", "jsonpath={.spec.clusterIP}").stdout
        for _ in range(args.runs):
            cluster_segs.append(study_to_seg(converged, adapter, 104, pacs_dir, study / "dicom"))
        local_ports = {"api-port": free_port(), "grpc-port": free_port(), "port": free_port()}
        local = project(work / "local", "local", pacs_port=pacs_port, ports=local_ports)
        run(*CLARACTL, "-C", str(local), "apply", "--auto-approve")
        try:
            dicom_port = int(re.search(r"dicom-adapter: \{port: (\d+)", (local / "clara.yaml").read_text())[1])
            for _ in range(args.runs):
                local_segs.append(study_to_seg(local, "127.0.0.1", dicom_port, pacs_dir, study / "dicom"))
        finally:
            run(*CLARACTL, "-C", str(local), "destroy", "--auto-approve", check=False)
    finally:
        pacs.terminate()
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--wait=false", check=False)

    print(f"  DICOM association → SEG at the PACS, cluster   {median(cluster_segs)}")
    print(f"  baseline: the same on the local target         {median(local_segs)}")


def report_apply_and_plan(args, applies, hands, plans, starts) -> None:
    print(f"\nct-segmentation on the test cluster ({args.runs} runs each; median, min, max)")
    print(f"  apply, empty namespace → all Ready   claractl    {median([a['total'] for a in applies])}")
    for phase in ("render", "server-side apply", "wait", "platform objects"):
        print(f"    {phase:<35} {median([a[phase] for a in applies])}")
    print(f"  baseline: kubectl apply --server-side + wait   {median(hands)}  (no platform objects)")
    plan_med, start_med = statistics.median(plans), statistics.median(starts)
    print(f"  plan, converged cluster ({args.plans} runs)        {median(plans)}")
    print(f"  baseline: claractl version (process start)     {median(starts)}")
    print(f"  → plan beyond process start                    {plan_med - start_med:6.2f} s (goal ≤ 1 s)", flush=True)


if __name__ == "__main__":
    main()
