"""Fixtures every test area shares."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@pytest.fixture
def postgres_url():
    """A fresh database on the test PostgreSQL server (scripts/postgres.sh start); dropped afterwards.

    Fails, never skips, when the server is missing: scripts/test.sh always starts it."""
    base = os.environ.get("CLARA_TEST_POSTGRES_URL")
    if not base:
        pytest.fail("CLARA_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh "
                    "(or eval \"$(scripts/postgres.sh start)\")")
    name = f"claractl_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
