"""Persistence for the platform: SQLAlchemy 2 over SQLite (default, WAL) or PostgreSQL (by URL).

    store = Store(config.database_url)
    store.create_all()                # creates or upgrades the schema (see migrations.py)
    with store.session() as s:        # commits on success, rolls back on error
        s.add(...)

Every state change is committed (durable) before the caller acknowledges it.
`store.jobs.create_job(session, pipeline, payload, …)` is the one way to hand work to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from claractl.platform.store import exports, jobs, payloads
from claractl.platform.store.changes import Listeners
from claractl.platform.store.migrations import SCHEMA_VERSION, SchemaTooNewError, migrate
from claractl.platform.store.models import Base

__all__ = ["Store", "SchemaTooNewError", "SCHEMA_VERSION", "jobs", "exports", "payloads", "Base"]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")      # readers never block the writer
    cursor.execute("PRAGMA synchronous=FULL")      # durable on commit, also across power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    jobs = jobs          # store.jobs.create_job(...)
    exports = exports    # store.exports.claim_export_tasks(...)
    payloads = payloads  # store.payloads.new_payload(...)

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            db_path = url.split("///", 1)[1] if "///" in url else ""
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._listeners = Listeners()
        event.listen(self._sessions, "after_commit", self._listeners.after_commit)
        event.listen(self._sessions, "after_rollback", self._listeners.after_rollback)

    def on_commit(self, topic: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` in this process after each commit that changed `topic` (see changes.py);
        returns the function that unsubscribes."""
        return self._listeners.add(topic, callback)

    def create_all(self) -> int:
        """Create or upgrade the schema; returns the version found (0 = new database)."""
        return migrate(self.engine)

    migrate = create_all

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
