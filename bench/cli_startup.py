"""Wall time of everyday `claractl` commands, beside the bare interpreter (not a test: prints figures).

    python bench/cli_startup.py [--runs 20]

Each round runs, one after another as separate processes: `python -c pass` (the baseline: the
same interpreter starting and exiting), `claractl --help`, `claractl version`, `claractl validate`
and `claractl plan` on the ct-segmentation blueprint project with its local platform running and
nothing to change (`plan --detailed-exitcode` must exit 0). Rounds interleave the commands so a
drift in machine speed touches all of them alike; the median of `--runs` rounds is reported, with
the time beyond the baseline and the goal of issue 13 (--help/version ≤ 0.15 s beyond the
interpreter, validate ≤ 0.3 s, plan ≤ 0.5 s). Compiled modules are cached as for any user (the
first, unmeasured round writes them).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import free_port  # noqa: E402


def claractl_command() -> list[str]:
    """The installed `claractl` script next to this interpreter (what users run), else `-m claractl`."""
    script = Path(sys.executable).parent / "claractl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "claractl"]


def with_free_ports(text: str) -> str:
    """The blueprint listens on fixed ports; give every service a free one so the bench runs anywhere."""
    replacements = [
        (r"api-port: \d+", f"api-port: {free_port()}"),
        (r"(dicom-adapter: \{)port: \d+", rf"\g<1>port: {free_port()}"),
        (r"triton: \{enabled: true\}", f"triton: {{enabled: true, http-port: {free_port()}, grpc-port: {free_port()}}}"),
        (r"(render: \{enabled: true, )port: \d+", rf"\g<1>port: {free_port()}"),
    ]
    for pattern, new in replacements:
        text, count = re.subn(pattern, new, text)
        if count != 1:
            raise SystemExit(f"bench: the blueprint no longer has {pattern!r}; update bench/cli_startup.py")
    return text


# As users run it: Python caches compiled modules (.pyc). With PYTHONDONTWRITEBYTECODE set (some CI
# and sandbox shells set it) every claractl module would be compiled again on every run (~0.1 s).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str], expect: int = 0) -> tuple[float, float]:
    """(wall, cpu) seconds of one process; cpu (user + system) moves less when the machine is busy."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=ENV)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        raise SystemExit(f"bench: {' '.join(argv)} exited {done.returncode}:\n{done.stdout.decode(errors='replace')}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    claractl = claractl_command()
    with tempfile.TemporaryDirectory(prefix="claractl-cli-bench-") as tmp:
        project = Path(tmp) / "ct"
        run(claractl + ["init", str(project), "--blueprint", "ct-segmentation"])
        clara_yaml = project / "clara.yaml"
        clara_yaml.write_text(with_free_ports(clara_yaml.read_text()))
        in_project = claractl + ["-C", str(project)]
        try:
            took, _ = run(in_project + ["apply", "--auto-approve"])
            print(f"setup: applied the ct-segmentation blueprint in {took:.1f} s (local platform running)")
            commands = {
                "python -c pass": ([sys.executable, "-c", "pass"], 0),
                "claractl --help": (claractl + ["--help"], 0),
                "claractl version": (claractl + ["version"], 0),
                "claractl validate": (in_project + ["validate"], 0),
                "claractl plan": (in_project + ["plan", "--detailed-exitcode"], 0),
            }
            for argv, expect in commands.values():       # warm the page cache and .pyc files
                run(argv, expect)
            times: dict[str, list[float]] = {name: [] for name in commands}
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, (argv, expect) in commands.items():
                    wall, used = run(argv, expect)
                    times[name].append(wall)
                    cpu[name].append(used)
        finally:
            subprocess.run(claractl + ["platform", "stop", "--state-dir", str(project / ".clara")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    goals = {"claractl --help": "≤ 0.15 s beyond", "claractl version": "≤ 0.15 s beyond",
             "claractl validate": "≤ 0.3 s", "claractl plan": "≤ 0.5 s"}
    base = statistics.median(times["python -c pass"])
    print(f"{'command':<20} {'wall median':>11} {'min':>7} {'max':>7} {'beyond python':>14} {'cpu median':>11}   goal"
          f"   ({args.runs} runs; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    for name, values in times.items():
        median = statistics.median(values)
        beyond = "" if name == "python -c pass" else f"{median - base:+.3f} s"
        print(f"{name:<20} {median:10.3f}s {min(values):6.3f}s {max(values):6.3f}s {beyond:>14} "
              f"{statistics.median(cpu[name]):10.3f}s   {goals.get(name, 'baseline')}")


if __name__ == "__main__":
    main()
