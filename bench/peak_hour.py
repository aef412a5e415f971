"""A hospital's peak hour, sustained: per-stage latency over time, throughput, CPU, memory, queues,
and whether anything was lost.

The load (tools/peak_load): the peak hour MONAI Deploy's Informatics Gateway is specified for —
120 CR, 50 US, 30 CT, 25 MR studies an hour — at `--multiplier` times that rate, synthetic
studies of realistic instance counts and sizes (CR 1-2 x 10 MB, US 20-60 x 0.9 MB, CT 150-400 x
0.5 MB, MR 100-300 x 128 kB), sent by `--senders` dcmtk storescu senders at once into the
platform (its own process; SQLite or PostgreSQL), grouped by study (5 s), one job per study
running a no-op operator that copies one instance, exported to Orthanc as the PACS.

Printed per `--window` (default 5 min, so a rising curve shows): studies, instances/s, p50/p95/p99
of each stage (send, group close, queue, run, export, total), the platform's CPU and memory,
the machine's CPU (other work on it shows here), the deepest queues. Then: nothing lost?, is
the curve flat (p95 of the last window <= 1.2 x the first), and the platform overhead per job.
Baseline from the same invocation: the same load at 1x for `--baseline-minutes`.

    python bench/peak_hour.py [--multiplier 10] [--minutes 60] [--database sqlite|postgresql|URL]
                              [--find-knee] [--window 300] [--senders 4] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import psutil  # noqa: E402

from peak_load.mix import describe  # noqa: E402
from peak_load.observe import STAGE_MEANING, STAGES, windows  # noqa: E402
from peak_load.run import Result, run_peak  # noqa: E402

FLAT = 1.2      # p95 of the last window at most this times the first


def database_url(choice: str) -> tuple[str, object]:
    """(SQLAlchemy URL, cleanup) — `postgresql` makes a fresh database on CLARA_TEST_POSTGRES_URL."""
    if choice != "postgresql":
        return choice, lambda: None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    base = os.environ.get("CLARA_TEST_POSTGRES_URL")
    if not base:
        sys.exit('--database postgresql needs CLARA_TEST_POSTGRES_URL (eval "$(scripts/postgres.sh start)")')
    name = f"clara_peak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def one_run(args, multiplier: float, minutes: float) -> Result:
    url, drop = database_url(args.database)
    scale = {m: args.scale for m in ("CR", "US", "CT", "MR")} if args.scale != 1.0 else None
    try:
        with tempfile.TemporaryDirectory(prefix="peak-hour-", dir=args.work_dir) as work:
            return run_peak(Path(work), multiplier=multiplier, duration=minutes * 60, database=url,
                            senders=args.senders, scale=scale, seed=args.seed, workers=args.workers)
    finally:
        drop()


def fmt(v: float | None, unit: str = "s") -> str:
    if v is None or v != v:
        return "-"
    return f"{v:.2f}" if unit == "s" else f"{v:.0f}"


def overhead(result: Result) -> list[float]:
    """Per job: the platform's own time (queue + run + export; the operator only copies a file)."""
    out = []
    for r in result.records:
        s = r.stages()
        if s:
            out.append(s["queue"] + s["run"] + s["export"])
    return out


def report(title: str, result: Result, width: float, seconds: float) -> dict:
    rows = windows(result.records, result.samples, result.t0, width)
    print(f"\n== {title}")
    print(f"   load: {describe(result.plan)}")
    head = (f"{'window':>8} {'studies':>7} {'inst/s':>7} | total p50/p95/p99 s | close  queue    run export "
            f"(p95 s) | CPU% plat/mach | RSS MB | max waiting jobs/exports/groups")
    print(head)
    print("-" * len(head))
    for row in rows:
        t = row["total"] or {}
        p95 = {s: (row[s] or {}).get(95) for s in STAGES}
        print(f"{row['from'] / 60:6.0f}m  {row['studies']:7d} {row['instances_per_s']:7.1f} | "
              f"{fmt(t.get(50)):>5} {fmt(t.get(95)):>5} {fmt(t.get(99)):>5}      | "
              f"{fmt(p95['close']):>5} {fmt(p95['queue']):>6} {fmt(p95['run']):>6} {fmt(p95['export']):>6}         | "
              f"{fmt(row['platform_cpu'], '%'):>4} {fmt(row['machine_cpu'], '%'):>4}      | "
              f"{fmt(row['rss_mb'], 'MB'):>6} | {row['jobs_waiting'] or 0}/{row['exports_waiting'] or 0}/"
              f"{row['groups_open'] or 0}")
    # The curve's windows: those that end before the arrivals stop (the last ones only drain).
    full = [r for r in rows if r["total"] and r["from"] + width <= seconds + 1] or [r for r in rows if r["total"]]
    first, last = (full[0]["total"][95], full[-1]["total"][95]) if full else (None, None)
    flat = bool(full) and last <= FLAT * first
    oh = overhead(result)
    lost = result.problems
    print(f"   nothing lost: {'yes' if not lost else 'NO'} ({len(result.records)} studies, "
          f"{sum(len(r.study.acknowledged) for r in result.records)} instances acknowledged, "
          f"{sum(len(r.jobs) for r in result.records)} jobs); all done {result.drained_after:.0f} s after the "
          f"last arrival")
    for p in lost[:20]:
        print(f"     - {p}")
    if full:
        print(f"   flat: {'yes' if flat else 'NO'} (p95 total, last full window {last:.2f} s vs first {first:.2f} s: "
              f"{last / first:.2f}x, goal <= {FLAT}x)")
    if oh:
        print(f"   platform overhead per job (queue + run + export): median {statistics.median(oh):.2f} s, "
              f"p95 {sorted(oh)[int(0.95 * (len(oh) - 1))]:.2f} s")
    for note in result.notes:
        print(f"   {note}")
    return {"flat": flat, "lost": bool(lost), "overhead": statistics.median(oh) if oh else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multiplier", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--baseline-minutes", type=float, default=2.0, help="the same load at 1x first (0: none)")
    parser.add_argument("--database", default="sqlite", help="sqlite, postgresql (fresh DB on the test server) or a URL")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="the engine's job slots")
    parser.add_argument("--window", type=float, default=300.0, help="seconds per row")
    parser.add_argument("--scale", type=float, default=1.0, help="image rows/columns factor (smaller: less disk)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--find-knee", action="store_true",
                        help="after the run, double the multiplier until the curve is no longer flat")
    parser.add_argument("--work-dir", default=None, help="where the platform's state lives (default: TMPDIR)")
    args = parser.parse_args()

    print(f"peak hour bench: {os.cpu_count()} cores, load average before {os.getloadavg()[0]:.1f}, "
          f"machine CPU {psutil.cpu_percent(interval=5):.0f}% over 5 s before starting; database {args.database}")
    for stage in STAGES:
        print(f"   {stage:>6}: {STAGE_MEANING[stage]}")
    if args.baseline_minutes:
        report(f"baseline: 1x for {args.baseline_minutes:g} min", one_run(args, 1.0, args.baseline_minutes),
               args.window, args.baseline_minutes * 60)
    multiplier = args.multiplier
    outcome = report(f"{multiplier:g}x for {args.minutes:g} min", one_run(args, multiplier, args.minutes), args.window,
                     args.minutes * 60)
    while args.find_knee and outcome["flat"] and not outcome["lost"]:
        multiplier *= 2
        outcome = report(f"{multiplier:g}x for {args.minutes:g} min", one_run(args, multiplier, args.minutes),
                         args.window, args.minutes * 60)
    if args.find_knee:
        print(f"\nthe curve stops being flat at {multiplier:g}x "
              f"({multiplier * 225:.0f} studies/h) on this machine")


if __name__ == "__main__":
    main()
