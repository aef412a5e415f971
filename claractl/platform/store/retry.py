"""Store writes that must not be lost to a passing outage (the database restarting, the disk full
for a while): tried again until they commit.

    retry_transient(lambda: write(store), stopping=event)

Only errors of the database being away are retried (SQLAlchemy OperationalError/InterfaceError:
connection refused or dropped, "database or disk is full", locked); a programming error or a
constraint violation is raised at once. Gives up — raising the last error — when `stopping` is
set: the platform is shutting down and the next start recovers from the store as it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger("claractl.store")
T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError)


def retry_transient(fn: Callable[[], T], *, stopping: threading.Event | None = None, what: str = "store write",
                    first_delay: float = 0.2, max_delay: float = 5.0) -> T:
    delay = first_delay
    failures = 0
    while True:
        try:
            result = fn()
        except TRANSIENT as exc:
            failures += 1
            if stopping is not None and stopping.is_set():
                raise
            if failures == 1:
                log.warning("%s failed, retrying until the store is back: %s", what, str(exc).splitlines()[0])
            (stopping or threading.Event()).wait(delay)
            delay = min(max_delay, delay * 2)
            continue
        if failures:
            log.warning("%s succeeded after %d failed tries", what, failures)
        return result
