"""Ordering graph and its walk: services → models → pipelines → AE titles / sources /
destinations for creates and updates; then deletes in reverse. Within a rank a target may order
its own changes by change group (`Change.group`). Each (rank, group) is a wave; the changes
of one wave run in parallel on a bounded thread pool. The first failure stops the walk: changes
already running finish, nothing new starts, and the result says what was and was not done.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from claractl.plan import address as addr
from claractl.plan.model import DELETE, NOOP, Change


def order(changes: list[Change]) -> list[Change]:
    """Apply order: upserts by rank, then deletes by reverse rank; stable by address within a rank."""
    upserts = sorted((c for c in changes if c.action != DELETE),
                     key=lambda c: (addr.rank(c.address), c.group, c.address))
    deletes = sorted((c for c in changes if c.action == DELETE),
                     key=lambda c: (-addr.rank(c.address), -c.group, c.address))
    return upserts + deletes


def waves(changes: list[Change]) -> list[list[Change]]:
    """Groups that may run in parallel, in order; no-ops are left out."""
    out: list[list[Change]] = []
    last = None
    for c in order([c for c in changes if c.action != NOOP]):
        key = (c.action == DELETE, addr.rank(c.address), c.group)
        if key != last:
            out.append([])
            last = key
        out[-1].append(c)
    return out


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)    # (address, message)
    not_done: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


Event = Callable[[str, Change, "str | None"], None]   # (phase: start|progress|done|failed, change, message)


def walk(changes: list[Change], run: Callable[[Change], None], parallelism: int = 10,
         on_event: Event | None = None) -> ApplyResult:
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    result = ApplyResult()
    lock = threading.Lock()
    stop = threading.Event()
    notify = on_event or (lambda *_: None)

    def one(change: Change) -> None:
        if stop.is_set():
            with lock:
                result.not_done.append(change.address)
            return
        notify("start", change, None)
        try:
            run(change)
        except Exception as exc:  # any failure stops the walk; the message is shown to the user
            stop.set()
            message = str(exc) or type(exc).__name__
            with lock:
                result.failed.append((change.address, message))
            notify("failed", change, message)
            return
        with lock:
            result.done.append(change.address)
        notify("done", change, None)

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") as pool:
        for wave in waves(changes):
            if stop.is_set():
                result.not_done += [c.address for c in wave]
                continue
            try:
                list(pool.map(one, wave))
            except KeyboardInterrupt:
                # Ctrl-C: let running changes finish, start nothing new, report like a failure.
                stop.set()
                with lock:
                    result.failed.append(("(interrupted)", "interrupted by the user"))
    position = {c.address: i for i, c in enumerate(order(changes))}
    result.not_done.sort(key=lambda a: position.get(a, 0))
    return result
