"""The Target interface, and the plan/apply/destroy workflow every target shares.

A target implements four primitives (read the actual state, apply one change, take and release
the apply lock); everything else — desired state, diff, ordering, parallel walk, stale-plan
check, lock waiting — is here and in `claractl.plan`. See docs/plan-apply.md, "Writing a target".
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import socket
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Iterator

from claractl.plan import (
    ActualState, ApplyResult, Change, LockError, Plan, PlanError, Resource, check_fresh, compute_plan, desired_state, walk,
)
from claractl.plan.graph import Event, order
from claractl.plan.model import UPDATE
from claractl.project.model import Project

log = logging.getLogger(__name__)


@dataclass
class LockInfo:
    lock_id: str
    holder: str                 # "user@host pid N"
    created_at: datetime | None = None
    took_over: "LockInfo | None" = None   # the stale lock (of a process gone) this one replaced

    def age(self) -> str:
        if self.created_at is None:
            return "unknown age"
        seconds = int((datetime.now(timezone.utc) - self.created_at).total_seconds())
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


class LockHeld(Exception):
    """Raised by `Target.acquire_lock` when someone else holds it."""

    def __init__(self, info: LockInfo) -> None:
        self.info = info
        super().__init__(f"held by {info.holder} for {info.age()} (lock ID {info.lock_id})")


def holder_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:   # no user name in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def holder_is_gone(holder: str) -> bool:
    """True when the holder ran on this machine and its process has exited (a stale lock)."""
    m = re.fullmatch(r"[^@]*@(?P<host>\S+) pid (?P<pid>\d+)", holder)
    if not m or m["host"] != socket.gethostname():
        return False
    import psutil   # only when a lock is held: not on every plan

    return not psutil.pid_exists(int(m["pid"]))


class Target(ABC):
    """One place a project can be applied to. Subclasses set `type` and implement the primitives.

    Contract:
    - `read_state()` reads live (never cached) every object this target could manage, owned by
      any project or none, as `ActualObject(address, fields, owner)`; `fields` use the project
      file's key names, the same shape `desired_state` produces.
    - `apply_change(change, desired)` makes one change (create/update/replace/delete) and waits
      until it is healthy; it raises with a clear message on failure. `desired` is the Resource
      with real (unredacted) values; None for a delete. It is called from several threads at once.
    - `acquire_lock(holder)` returns a LockInfo or raises LockHeld; `release_lock`, `force_unlock`.
    """

    type: ClassVar[str] = ""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.wait = True                        # apply waits for health (--wait / --no-wait)
        self.wait_timeout: float | None = None  # seconds per object (--timeout); None: the target's default
        self._report: Callable[[Change, str], None] = lambda change, text: None

    def report(self, change: Change, text: str) -> None:
        """Tell the user how a running change is doing (e.g. what a wait is waiting for)."""
        self._report(change, text)

    @property
    def scope(self) -> str:
        return f"{self.project.name}/{self.type}"

    def service_fields(self, project: Project) -> dict[str, dict[str, Any]]:
        """The service settings this target manages (default: as written in the project)."""
        return {name: dict(settings) for name, settings in project.services.items()}

    def desired(self) -> dict[str, Resource]:
        return desired_state(self.project, self.service_fields)

    @abstractmethod
    def read_state(self) -> ActualState: ...

    @abstractmethod
    def apply_change(self, change: Change, desired: Resource | None) -> None: ...

    @abstractmethod
    def acquire_lock(self, holder: str) -> LockInfo: ...

    @abstractmethod
    def release_lock(self, lock: LockInfo) -> None: ...

    @abstractmethod
    def force_unlock(self, lock_id: str) -> None: ...

    def after_apply(self, result: ApplyResult) -> None:
        """Hook after a walk (e.g. stop what a destroy emptied). Default: nothing."""

    def check(self) -> None:
        """Optional: refuse a project this target cannot run, raising PlanError. Default: nothing."""

    def change_note(self, change: Change) -> str | None:
        """Optional: what applying an update does beyond its fields (e.g. "restarts: dicom-adapter"),
        shown with the change in every plan format (as its `reason`). Default: nothing."""
        return None

    def refine(self, change: Change) -> None:
        """Optional: adjust a computed change with what only the target knows — an update the target
        cannot make in place becomes a replace (with its reason), a change group orders it among its
        siblings. Default: an update gets `change_note` as its reason."""
        if change.action == UPDATE and not change.reason:
            change.reason = self.change_note(change)


def make_plan(target: Target, *, destroy: bool = False, only: list[str] | None = None,
              exclude: list[str] | None = None) -> Plan:
    project = target.project
    if not destroy:
        target.check()
    plan = compute_plan(project_name=project.name, target_type=target.type, scope=target.scope,
                        desired=target.desired(), actual=target.read_state(), destroy=destroy,
                        only=only, exclude=exclude, project_file=str(project.path))
    for change in plan.changes:
        target.refine(change)
    plan.changes = order(plan.changes)
    return plan


@contextmanager
def locked(target: Target, timeout: float = 0.0, poll: float = 0.5) -> Iterator[LockInfo]:
    """Hold the apply lock; wait up to `timeout` seconds for it, then fail naming the holder."""
    deadline = time.monotonic() + timeout
    holder = holder_name()
    stale: LockInfo | None = None
    while True:
        try:
            info = target.acquire_lock(holder)
            info.took_over = stale
            break
        except LockHeld as held:
            if holder_is_gone(held.info.holder):
                # An apply killed on this machine: its process is gone, so its lock guards nothing.
                # Taking it over lets this apply finish the interrupted one (DESIGN §4).
                log.info("taking over the stale apply lock %s of %s", held.info.lock_id, held.info.holder)
                target.force_unlock(held.info.lock_id)
                stale = held.info
                continue
            if time.monotonic() >= deadline:
                raise LockError(
                    f"another apply holds the lock for {target.scope}: {held}. "
                    f"If that process is gone, release it with `claractl force-unlock {held.info.lock_id}`."
                ) from None
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    try:
        yield info
    finally:
        target.release_lock(info)


def verify_plan(target: Target, plan: Plan) -> None:
    """Refuse a saved plan that does not match the target (re-read now) or the project."""
    if plan.target != target.type:
        raise PlanError(f"this plan is for target {plan.target!r}, the project targets {target.type!r}")
    check_fresh(plan, target.project.name, target.desired(), target.read_state())


def execute(target: Target, plan: Plan, parallelism: int = 10, on_event: Event | None = None) -> ApplyResult:
    """Apply exactly the plan's changes, in order, with real values from the project."""
    desired = target.desired()

    def run(change: Change) -> None:
        target.apply_change(change, desired.get(change.address))

    if on_event is not None:
        target._report = lambda change, text: on_event("progress", change, text)
    result = walk(plan.changes, run, parallelism=parallelism, on_event=on_event)
    target.after_apply(result)
    return result


ProgressCallback = Callable[[str, Change, "str | None"], None]
