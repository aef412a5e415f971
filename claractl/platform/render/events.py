"""Live updates for the dashboard: Server-Sent Events telling the page *what* changed.

The engine, the API and the DICOM adapter write the store from other processes, so the only
change signal that works for all of them is the store itself: a cheap fingerprint per topic,
computed at most once per interval however many browsers listen. The browser re-fetches the
topic's JSON when an event arrives (events carry no data that would need authorising twice).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claractl.platform.store.models import (
    AETitle,
    AuditEvent,
    Destination,
    ExportTask,
    Job,
    Model,
    OperatorRun,
    Pipeline,
    Source,
)

TOPICS = ("jobs", "exports", "config", "audit")
RECENT_JOBS = 500


def _digest(rows) -> str:
    return hashlib.sha1(json.dumps([list(r) for r in rows], default=str).encode()).hexdigest()


def fingerprints(session: Session) -> dict[str, str]:
    recent = select(Job.id, Job.state, Job.status, Job.started_at, Job.stopped_at).order_by(
        Job.created_at.desc()
    ).limit(RECENT_JOBS)
    ops = select(
        OperatorRun.state, OperatorRun.status, func.count(), func.max(OperatorRun.started_at),
        func.max(OperatorRun.stopped_at),
    ).group_by(OperatorRun.state, OperatorRun.status).order_by(OperatorRun.state, OperatorRun.status)
    exports = select(ExportTask.state, func.count(), func.max(ExportTask.updated_at)).group_by(
        ExportTask.state
    ).order_by(ExportTask.state)
    config_rows = []
    for table in (Pipeline, AETitle, Source, Destination, Model):
        config_rows.extend(session.execute(select(func.count(), func.max(table.updated_at))).all())
    config_rows.extend(session.execute(select(Model.name, Model.state).order_by(Model.name)).all())
    return {
        "jobs": _digest(list(session.execute(recent).all()) + list(session.execute(ops).all())),
        "exports": _digest(session.execute(exports).all()),
        "config": _digest(config_rows),
        "audit": _digest(session.execute(select(func.max(AuditEvent.id))).all()),
    }


class ChangeFeed:
    """Shared fingerprint poller; `changes()` yields the topics that changed since last time."""

    def __init__(self, session_factory: Callable, interval: float = 0.4) -> None:
        self._session_factory = session_factory
        self.interval = interval
        self._lock = threading.Lock()
        self._at = 0.0
        self._current: dict[str, str] = {}

    def current(self) -> dict[str, str]:
        with self._lock:
            # Shared for half an interval: listeners waking every `interval` always see a fresh
            # value (a full interval would let a listener read one just short of expiry, doubling
            # its latency), while many listeners still cost one query set per half interval.
            if time.monotonic() - self._at >= self.interval / 2:
                self._at = time.monotonic()
                with self._session_factory() as session:
                    self._current = fingerprints(session)
            return dict(self._current)

    async def stream(self, is_disconnected: Callable, heartbeat: float = 15.0) -> AsyncIterator[str]:
        """SSE text: a `hello` event, then `change` events {topics: [...]}, comments as heartbeat."""
        seen = await asyncio.to_thread(self.current)
        yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'topics': list(TOPICS)})}\n\n"
        quiet_since = time.monotonic()
        while not await is_disconnected():
            await asyncio.sleep(self.interval)
            now = await asyncio.to_thread(self.current)
            changed = [t for t in TOPICS if now.get(t) != seen.get(t)]
            seen = now
            if changed:
                yield f"event: change\ndata: {json.dumps({'topics': changed})}\n\n"
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > heartbeat:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
