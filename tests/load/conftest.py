"""Load and fault tests: the peak-hour load (tools/peak_load) against the platform as its own
process, Orthanc as the PACS. They assert that nothing is lost — never how fast it went (the
figures are bench/peak_hour.py's)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

# Small images: these tests are about what happens to each instance, not about disk bandwidth.
SCALE = {"CR": 0.1, "US": 0.25, "CT": 0.25, "MR": 0.5}


def assert_nothing_lost(result) -> None:
    assert result.records, "nothing was planned"
    assert not result.problems, f"{len(result.problems)} problems, first: {result.problems[:8]}"
    acknowledged = sum(len(r.study.acknowledged) for r in result.records)
    assert acknowledged == sum(r.study.plan.instances for r in result.records)


class ThrowawayPostgres:
    """A PostgreSQL server of our own (initdb in a temp dir, a free port below 32768), for faults
    the shared test server must not suffer."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories.
        self.data = Path(tempfile.mkdtemp(prefix="claractl-pg-"))
        self.port = _free_low_port()
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        assert bins, "PostgreSQL server binaries not found under /usr/lib/postgresql"
        self.bin = bins[-1].parent
        shutil.chown(self.data, "postgres")
        self._as_pg(f"{self.bin}/initdb -D {self.data} -U postgres --auth=trust -E UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_pg(self, command: str) -> None:
        proc = subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"{command}: {proc.stderr or proc.stdout}")

    def start(self) -> None:
        self._as_pg(f"{self.bin}/pg_ctl -D {self.data} -w -l {self.data}/server.log -o "
                    f"'-p {self.port} -k /tmp -c listen_addresses=127.0.0.1' start")

    def stop(self) -> None:
        self._as_pg(f"{self.bin}/pg_ctl -D {self.data} -w -m fast stop")


def _free_low_port() -> int:
    import random
    import socket
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port below 32768")


@pytest.fixture
def throwaway_postgres():
    pg = ThrowawayPostgres()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop()
        except AssertionError:
            pass
        shutil.rmtree(pg.data, ignore_errors=True)
