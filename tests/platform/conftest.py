"""Fixtures for the platform tests: a real platform (store, engine, API over HTTP) per test,
on SQLite or on the PostgreSQL that scripts/test.sh starts (CLARA_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from platform_helpers import RunningPlatform, make_config


@pytest.fixture
def postgres_url():
    """A fresh database on the test PostgreSQL server; dropped afterwards."""
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


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request):
    if request.param == "sqlite":
        return "sqlite"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def start_platform(tmp_path):
    """start_platform(database="sqlite", **engine_settings) → RunningPlatform (stopped after the test)."""
    started: list[RunningPlatform] = []

    def start(database: str = "sqlite", state_dir: Path | None = None, **engine) -> RunningPlatform:
        running = RunningPlatform(make_config(state_dir or tmp_path / "state", database, **engine))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


