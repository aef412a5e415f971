"""A platform with the Clara API on free loopback ports, shared by a module's tests."""

from __future__ import annotations

import pytest

from tests.clara_api.support import start_platform


@pytest.fixture(scope="module")
def clara(tmp_path_factory):
    running = start_platform(tmp_path_factory.mktemp("clara-state"))
    yield running
    running.stop()
