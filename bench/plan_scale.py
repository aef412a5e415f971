"""Plan and apply at scale against a real local platform (not a test: prints figures).

    python bench/plan_scale.py [--sizes 50,500,5000] [--apply-size 500]

For each size N it generates a project of N managed objects (10% pipelines, 40% AE titles,
25% sources, 25% destinations), applies it, then times `plan` with no changes and with 10% of
the objects edited. Baselines, measured in the same run: reading the actual state alone (the
HTTP round trips every plan needs) and loading the project file alone. Then it times applying 500 new objects at parallelism 1
and 10. Target from the issue: 500 objects planned in ≤ 1 s, growing linearly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claractl.plan import compute_plan  # noqa: E402
from claractl.platform import process  # noqa: E402
from claractl.project import load_project  # noqa: E402
from claractl.targets import execute, get_target, make_plan  # noqa: E402
from common import free_port  # noqa: E402

PIPELINE = """api-version: 0.6.0
name: {name}
operators:
- name: dicom-reader
  container: {{image: claractl/dicom-reader, tag: "0.1.0", command: [python, -m, claractl_operators.dicom_reader]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
"""


def write_project(root: Path, n: int, ports: dict[str, int], edited: float = 0.0, prefix: str = "") -> Path:
    """N objects; `edited` of each kind get a changed field (timeout / host / port / tag)."""
    n_pipe, n_ae, n_src = max(1, n // 10), n * 4 // 10, n // 4
    n_dst = n - n_pipe - n_ae - n_src
    cut = lambda k: int(k * edited)  # noqa: E731 - the first `cut(k)` objects of a kind are edited
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    lines = ["apiVersion: claractl/v1", "kind: Project", "name: bench", "target: {type: local}", "services:",
             f"  platform: {{api-port: {ports['api']}}}",
             f"  dicom-adapter: {{port: {ports['dicom']}}}",
             f"  triton: {{enabled: false, http-port: {ports['http']}, grpc-port: {ports['grpc']}}}",
             "  render: {enabled: false}", "pipelines:"]
    for i in range(n_pipe):
        name = f"{prefix}p{i:05d}"
        text = PIPELINE.format(name=name)
        if i < cut(n_pipe):
            text = text.replace('"0.1.0"', '"0.2.0"')
        (root / "pipelines" / f"{name}.yaml").write_text(text)
        lines.append(f"  - {{name: {name}, file: pipelines/{name}.yaml}}")
    lines.append("ae-titles:")
    for i in range(n_ae):
        lines.append(f"  - {{ae-title: {prefix.upper()}AE{i:05d}, pipelines: [{prefix}p{i % n_pipe:05d}], "
                     f"timeout: {7 if i < cut(n_ae) else 5}}}")
    lines.append("sources:")
    for i in range(n_src):
        host = "10.9.9.9" if i < cut(n_src) else "10.0.0.1"
        lines.append(f"  - {{name: {prefix}s{i:05d}, ae-title: SRC{i % 1000:03d}, host: {host}}}")
    lines.append("destinations:")
    for i in range(n_dst):
        lines.append(f"  - {{name: {prefix}d{i:05d}, ae-title: DST{i % 1000:03d}, host: 10.0.0.2, "
                     f"port: {4243 if i < cut(n_dst) else 4242}}}")
    path = root / "clara.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def best_of(k: int, fn):
    return min(timed(fn)[0] for _ in range(k))


def plan_once(path: Path):
    target = get_target(load_project(path))
    return make_plan(target)


def bench_size(root: Path, n: int, ports: dict[str, int]) -> None:
    path = write_project(root, n, ports)
    target = get_target(load_project(path))
    took, result = timed(lambda: execute(target, make_plan(target), parallelism=10))
    assert result.ok, result.failed
    plan = plan_once(path)
    assert not plan.has_changes, [c.address for c in plan.pending][:5]
    read = best_of(3, target.read_state)
    load = best_of(3, lambda: load_project(path))
    actual = target.read_state()
    engine = best_of(3, lambda: compute_plan(project_name="bench", target_type="local", scope="bench/local",
                                             desired=target.desired(), actual=actual))
    nochange = best_of(3, lambda: plan_once(path))
    write_project(root, n, ports, edited=0.10)
    changed_plan = plan_once(path)
    changed = best_of(3, lambda: plan_once(path))
    print(f"{n:>6} objects | setup apply {took:6.2f} s | baselines: load project {load:6.3f} s, read state {read:6.3f} s "
          f"| engine (desired+diff+order) {engine:6.3f} s | plan total, no change {nochange:6.3f} s "
          f"({n / nochange:6.0f} obj/s), 10% changed {changed:6.3f} s ({len(changed_plan.pending)} changes)", flush=True)
    # Remove them so the next size starts from an empty platform.
    result = execute(target, make_plan(target, destroy=True), parallelism=10)
    assert result.ok, result.failed
    process.start_background(str(target.state_dir))


def bench_apply(root: Path, n: int, ports: dict[str, int]) -> None:
    # Baseline: the same number of plain PUTs through the API client, one after another.
    path = write_project(root, n, ports, prefix="raw")
    target = get_target(load_project(path))
    target.read_state()
    client = target.client()
    t = time.perf_counter()
    for i in range(n):
        client.put_source(f"raw{i:05d}", "RAW", "10.0.0.3", owner="bench")
    raw = time.perf_counter() - t
    print(f"baseline: {n} sequential PUT /sources through PlatformClient: {raw:6.2f} s ({n / raw:6.0f} obj/s)", flush=True)
    execute(target, make_plan(target, destroy=True), parallelism=10)
    process.start_background(str(target.state_dir))
    for parallelism in (1, 10):
        path = write_project(root, n, ports, prefix=f"x{parallelism}")
        target = get_target(load_project(path))
        plan = make_plan(target)
        creates = sum(1 for c in plan.pending if c.action == "create")
        took, result = timed(lambda: execute(target, plan, parallelism=parallelism))
        assert result.ok, result.failed
        print(f"apply {creates} new objects at parallelism {parallelism:>2}: {took:6.2f} s "
              f"({creates / took:6.0f} obj/s)", flush=True)
        execute(target, make_plan(target, destroy=True), parallelism=10)
        process.start_background(str(target.state_dir))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="50,500,5000")
    ap.add_argument("--apply-size", type=int, default=500)
    args = ap.parse_args()
    ports = {"api": free_port(), "dicom": free_port(), "http": free_port(), "grpc": free_port()}
    with tempfile.TemporaryDirectory(prefix="claractl-bench-") as tmp:
        root = Path(tmp)
        try:
            for n in (int(x) for x in args.sizes.split(",")):
                bench_size(root, n, ports)
            if args.apply_size:
                bench_apply(root, args.apply_size, ports)
        finally:
            process.stop_background(str(root / ".clara"))


if __name__ == "__main__":
    main()
