"""`claractl dicom echo|send|status` against dcmtk storescp and our adapter."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.platform.dicom import DicomAdapter
from tests.dicom.conftest import CALLED_AE
from tests.dicom.test_export import storescp  # noqa: F401  (fixture)
from tests.ports import free_port, served

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["--no-color", "dicom", *args])


def test_echo_storescp_and_our_scp(storescp, adapter):
    port, _ = storescp
    r = run("echo", f"ARCHIVE@127.0.0.1:{port}")
    assert r.exit_code == 0 and "0x0000 Success" in r.output
    r = run("echo", f"{CALLED_AE}@127.0.0.1:{adapter.port}", "--calling-ae", "CLARATEST")
    assert r.exit_code == 0, r.output


def test_echo_rejected_names_peer_and_reason(adapter):
    r = run("echo", f"WRONGAE@127.0.0.1:{adapter.port}", "--calling-ae", "CLARATEST")
    assert r.exit_code == 1
    assert f"WRONGAE@127.0.0.1:{adapter.port}" in r.output and "called AE not recognised" in r.output


def test_echo_bad_address_is_a_usage_error():
    r = run("echo", "no-port-here")
    assert r.exit_code == 2 and "AE@HOST:PORT" in r.output


def test_send_directory_with_parallel_associations(storescp, ct5):
    port, out = storescp
    r = run("send", str(ct5[0].parent), "--to", f"ARCHIVE@127.0.0.1:{port}", "-j", "2")
    assert r.exit_code == 0, r.output
    assert "5 of 5 instances accepted" in r.output and "0x0000 Success" in r.output
    assert len(list(out.iterdir())) == 5


def test_send_reports_refusals_and_fails(platform, ct5):
    config, store = platform
    config.dicom.reserve_mb = 10 ** 9
    a = DicomAdapter(config, store, export_agent=False)
    a.start()
    try:
        r = run("send", *map(str, ct5[:2]), "--to", f"{CALLED_AE}@127.0.0.1:{a.port}", "--calling-ae", "CLARATEST")
    finally:
        a.stop()
    assert r.exit_code == 1
    assert "0xA700 Failure" in r.output and "0 of 2 instances accepted" in r.output


def test_send_without_dicom_files(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    r = run("send", str(tmp_path), "--to", "A@127.0.0.1:1")
    assert r.exit_code == 2 and "no DICOM files" in r.output


@pytest.fixture
def api_with_adapter(adapter):
    api = FastAPI()
    api.include_router(adapter.router, prefix="/api/v1")
    with served(api) as url:
        yield url


def test_status_through_api(api_with_adapter, adapter, ct5):
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
    assert assoc.send_c_store(ct5[0]).Status == 0
    r = run("status", "--api", api_with_adapter)
    assoc.release()
    assert r.exit_code == 0, r.output
    lines = {" ".join(l.split()[:-1]): l.split()[-1] for l in r.output.splitlines() if l.startswith("  ") and l.split()}
    assert lines["associations active"] == "1"
    assert lines["instances received"] == "1" and lines["groups open"] == "1"
    r = run("status", "--api", api_with_adapter, "--json")
    assert '"instances_received": 1' in r.output


def test_status_unreachable_api():
    r = run("status", "--api", f"http://127.0.0.1:{free_port()}")
    assert r.exit_code == 1 and "not reachable" in r.output
