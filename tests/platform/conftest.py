"""Fixtures for the platform tests: a real platform (store, engine, API over HTTP) per test,
on SQLite or on the PostgreSQL that scripts/test.sh starts (CLARA_TEST_POSTGRES_URL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_helpers import RunningPlatform, make_config


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


