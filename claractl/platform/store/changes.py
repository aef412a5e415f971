"""In-process wake-ups on commit.

A producer marks what its transaction changed (`mark(session, "jobs")`); once it commits, this
process's listeners for that topic run — the engine wakes for "jobs", the export agent for
"exports" — instead of finding the change at their next poll (0.5 s, 1 s: most of a job's
platform overhead). Other processes (an adapter on its own, several replicas) still find changes
by polling; this only makes the common one-process case prompt.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

_KEY = "claractl.changed"        # session.info: topics changed by the transaction


def mark(session: Session, topic: str) -> None:
    session.info.setdefault(_KEY, set()).add(topic)


class Listeners:
    def __init__(self) -> None:
        self._by_topic: dict[str, list[Callable[[], None]]] = {}

    def add(self, topic: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes."""
        self._by_topic.setdefault(topic, []).append(callback)
        return lambda: self._by_topic[topic].remove(callback)

    def after_commit(self, session: Session) -> None:
        for topic in session.info.pop(_KEY, ()):
            for callback in self._by_topic.get(topic, ()):
                callback()

    @staticmethod
    def after_rollback(session: Session) -> None:
        session.info.pop(_KEY, None)
