"""Versioned schema migrations.

The database records its schema version in `schema_version` (one row). Opening a store:

- empty database → create every table from `models.py` and stamp it `SCHEMA_VERSION`;
- tables but no version row (made by `Base.metadata.create_all` before versioning) → version 1;
- older version → run each migration step above it, in order, in one transaction per step;
- newer version than this code knows → refuse with `SchemaTooNewError` (never guess).

Add a step: write `def _vN(conn)` doing the DDL with SQLAlchemy (portable across SQLite and
PostgreSQL), append it to `STEPS`; the fresh-database path needs nothing, `create_all` already
builds the latest tables from `models.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine

from claractl.platform.store.models import Base, SchemaVersion


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer claractl."""


def _add_column(conn: Connection, table: str, column: str, ddl_type: str, default: str | None = None) -> None:
    existing = {c["name"] for c in inspect(conn).get_columns(table)}
    if column in existing:
        return
    suffix = f" DEFAULT {default}" if default is not None else ""
    conn.execute(text(f'ALTER TABLE {table} ADD COLUMN "{column}" {ddl_type}{suffix}'))


def _v2(conn: Connection) -> None:
    """Cancel requests travel through the store; operator runs keep their own message."""
    _add_column(conn, "jobs", "cancel_requested", "BOOLEAN", "false")
    _add_column(conn, "operator_runs", "message", "TEXT")


def _v3(conn: Connection) -> None:
    """Clara API: metadata on pipelines, payloads and models; payload type; a job's input payloads.
    The `model_sets` table (catalogs, instances) is created by the create_all after the step."""
    for table in ("pipelines", "payloads", "models"):
        _add_column(conn, table, "metadata", "JSON")
    _add_column(conn, "payloads", "type", "VARCHAR(16)", "'pipeline'")
    _add_column(conn, "jobs", "input_payloads", "JSON")


def _v4(conn: Connection) -> None:
    """DICOM over TLS: a destination may require it."""
    _add_column(conn, "destinations", "tls", "BOOLEAN", "false")


def _v5(conn: Connection) -> None:
    """The audit trail: table `audit_events`, made by the create_all after the step."""


# STEPS[i] upgrades version i+1 → i+2.
STEPS: list[Callable[[Connection], None]] = [_v2, _v3, _v4, _v5]
SCHEMA_VERSION = len(STEPS) + 1


def current_version(conn: Connection) -> int | None:
    """The recorded version; None for an empty database."""
    tables = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ in tables:
        row = conn.execute(text("SELECT version FROM schema_version ORDER BY id LIMIT 1")).first()
        if row is not None:
            return int(row[0])
    return 1 if "jobs" in tables else None


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(text("DELETE FROM schema_version"))
    conn.execute(text("INSERT INTO schema_version (id, version) VALUES (1, :v)"), {"v": version})


def migrate(engine: Engine) -> int:
    """Bring the database to SCHEMA_VERSION; return the version it was at (0 = empty)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes opening one new database at once: one migrates, the other waits.
            conn.execute(text("SELECT pg_advisory_xact_lock(7263514)"))
        found = current_version(conn)
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"database schema version {found} is newer than this claractl understands "
                f"(version {SCHEMA_VERSION}); upgrade claractl to open it"
            )
        if found is None:
            Base.metadata.create_all(conn)
            _stamp(conn, SCHEMA_VERSION)
            return 0
        Base.metadata.create_all(conn, tables=[SchemaVersion.__table__])
    for version in range(found, SCHEMA_VERSION):
        with engine.begin() as conn:
            STEPS[version - 1](conn)
            # Tables added by later versions are created here (create_all skips existing ones).
            Base.metadata.create_all(conn)
            _stamp(conn, version + 1)
    return found
