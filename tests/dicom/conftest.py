"""Fixtures for the DICOM adapter tests: a temp store, a running adapter, dcmtk/Orthanc helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from claractl.platform.config import PlatformConfig
from claractl.platform.dicom import DicomAdapter
from claractl.platform.dicom.spool import SUFFIX, read_records
from claractl.platform.dicom.synthetic import make_ct_series
from claractl.platform.store import Store
from claractl.platform.store.models import AETitle, Job, Pipeline, Source
from tests.ports import free_port

DCMTK = Path("/usr/bin")          # pynetdicom installs its own `storescu` etc. earlier on PATH
PEER_ENV = {**os.environ, "TCP_NODELAY": "1"}
CALLED_AE = "ORGANSEG"
PIPELINE = "ct-seg"


def dcmtk(tool: str, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(DCMTK / tool), *args], env=PEER_ENV, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


@contextmanager
def scp_process(config) -> Iterator[subprocess.Popen]:
    """The adapter as its own process (`python -m claractl.platform.dicom`), for kill -9 tests;
    stopped with SIGTERM at the end unless the test killed it."""
    proc = subprocess.Popen([sys.executable, "-m", "claractl.platform.dicom", "--state-dir", str(config.root),
                             "--no-export"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening"), line
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def spool_records(spool_dir: Path) -> dict[str, bytes]:
    """The valid records in a receive spool directory, by instance file name."""
    return {meta["file"]: data for seg in sorted(spool_dir.glob(f"*{SUFFIX}")) for meta, data in read_records(seg)}


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_published(adapter) -> None:
    """Until every acknowledged instance is copied into its group directory (the spool defers
    those copies while instances keep arriving)."""
    wait_for(lambda: adapter.spool.copies_pending() == 0, interval=0.01)


def seed(store: Store, sources=(("local-storescu", "STORESCU", "127.0.0.1"), ("local-echo", "ECHOSCU", "127.0.0.1"),
                                ("local-test", "CLARATEST", "localhost"), ("orthanc", "ORTHANC", "127.0.0.1")),
         timeout: float = 1.0, group_by: str = "0020,000D") -> None:
    with store.session() as s:
        s.add(Pipeline(name=PIPELINE, name_key=PIPELINE, definition_text="",
                       definition={"name": PIPELINE, "operators": [{"name": "reader"}, {"name": "seg", "input": [{"from": "reader"}]}]}))
        s.add(AETitle(ae_title=CALLED_AE, pipelines=[PIPELINE], group_by=group_by, timeout=timeout, priority="higher"))
        for name, ae, host in sources:
            s.add(Source(name=name, ae_title=ae, host=host))


def jobs(store: Store) -> list[Job]:
    with store.session() as s:
        return list(s.scalars(select(Job).options(selectinload(Job.operators)).order_by(Job.created_at)))


@pytest.fixture
def platform(tmp_path):
    """(config, store) on a temp state dir with a pipeline, the ORGANSEG AE and local sources."""
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.dicom.port = free_port()
    config.dicom.host = "127.0.0.1"
    config.dicom.watermark_percent = 99.9
    config.dicom.spool_segment_mb = 8      # small segments: rotation happens within a 200-slice series
    config.root.mkdir(parents=True)
    store = Store(config.database_url)
    store.create_all()
    seed(store)
    yield config, store
    store.dispose()


@pytest.fixture
def adapter(platform):
    config, store = platform
    a = DicomAdapter(config, store, export_agent=False, config_ttl=0.2, close_interval=0.05)
    a.start()
    yield a
    a.stop()


@pytest.fixture(scope="session")
def ct200(tmp_path_factory) -> list[Path]:
    return make_ct_series(tmp_path_factory.mktemp("ct200"), 200)


@pytest.fixture(scope="session")
def ct5(tmp_path_factory) -> list[Path]:
    return make_ct_series(tmp_path_factory.mktemp("ct5"), 5, size=64)


def dataset_bytes(path: Path) -> bytes:
    """The file minus preamble and file meta group: what travels in the C-STORE."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    group_len = int.from_bytes(data[140:144], "little")   # (0002,0000) UL, explicit VR
    return data[144 + group_len:]


def assert_job_input_is(config, job, sent: list[Path]) -> dict[str, Path]:
    """The job's input payload holds exactly the `sent` instances (and its metadata says how many),
    as `<SOPInstanceUID>.dcm`, each dataset byte-identical to what was sent; returns the input
    files by name."""
    received = {p.name: p for p in (config.payloads_dir / job.payload_id / "input").iterdir()}
    expected = {f"{pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID}.dcm": p for p in sent}
    assert set(received) == set(expected) and job.metadata_["instances"] == len(sent)
    for name, path in expected.items():
        assert dataset_bytes(received[name]) == dataset_bytes(path), name
    return received
