"""python -m claractl_operators.register_results --agent AGENT [--data '["dest", ...]'] --input DIR"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ..common.errors import OperatorError, run
from ..common.platform_api import JobContext

log = logging.getLogger("register-results")
NO_DESTINATION_AGENTS = {"renderserver"}


def parse_destinations(agent: str, data: str | None) -> list[str | None]:
    if agent in NO_DESTINATION_AGENTS:
        if data not in (None, "", "[]"):
            log.warning("agent %s takes no destination; ignoring --data %s", agent, data)
        return [None]
    if not data:
        raise OperatorError(f"agent {agent!r} needs --data '[\"<destination>\", ...]'")
    try:
        dests = json.loads(data)
    except ValueError as exc:
        raise OperatorError(f"--data {data!r} is not JSON: {exc}") from exc
    if isinstance(dests, str):
        dests = [dests]
    if not isinstance(dests, list) or not dests or not all(isinstance(d, str) and d for d in dests):
        raise OperatorError(f"--data {data!r} must be a JSON list of destination names")
    return dests


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="register-results", description="Create export tasks for a job's results.")
    p.add_argument("--agent", required=True, help="results agent, e.g. the DICOM export agent or renderserver")
    p.add_argument("--data", help="JSON list of destination names")
    p.add_argument("--input", required=True, type=Path, help="directory whose files are exported")
    a = p.parse_args(argv)
    if not a.agent.strip():
        raise OperatorError("--agent must not be empty")
    destinations = parse_destinations(a.agent, a.data)
    ctx = JobContext.from_env()
    files = ctx.relative_files(a.input)
    if not files:
        log.warning("no files in %s: no export task created", a.input)
        return 0
    for dest in destinations:
        task = ctx.create_export_task(a.agent, dest, files)
        log.info("export task %s: agent %s%s, %d files", task.get("id", "?"), a.agent,
                 f" → {dest}" if dest else "", len(files))
    return 0


if __name__ == "__main__":
    sys.exit(run("register-results", main))
