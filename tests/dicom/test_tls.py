"""DICOM over TLS: dcmtk `storescu +tls` into the adapter's TLS port (with and without client
certificate verification), exports to dcmtk `storescp +tls` (which requires our certificate), a
destination whose certificate we must not trust, and Orthanc with DICOM TLS both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claractl.platform.dicom import DicomAdapter, DicomExportAgent
from claractl.platform.dicom.scu import Peer, echo
from claractl.platform.dicom.tls import TlsConfigError, client_context
from claractl.platform.store.models import Destination, ExportState, ExportTask, Job, JobState
from tests.dicom.conftest import (
    CALLED_AE, DCMTK, PEER_ENV, assert_job_input_is, dcmtk, jobs, wait_for,
)
from tests.dicom.tls_certs import make_pki
from tests.ports import free_port, wait_listening

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from peak_load.pacs import OrthancPacs  # noqa: E402


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def with_tls(config, pki, verify_clients: bool = False):
    config.dicom.tls_port = free_port()
    config.dicom.tls_certificate = str(pki.server.cert)
    config.dicom.tls_private_key = str(pki.server.key)
    config.dicom.tls_ca_certificates = str(pki.ca)
    config.dicom.tls_verify_clients = verify_clients
    return config


@pytest.fixture
def tls_adapter(platform, pki):
    config, store = platform
    a = DicomAdapter(with_tls(config, pki), store, export_agent=False, config_ttl=0.2, close_interval=0.05)
    a.start()
    yield a
    a.stop()


def storescu_tls(port: int, files, key_pair=None, ca=None, *extra: str) -> subprocess.CompletedProcess:
    tls = ["+tls", str(key_pair.key), str(key_pair.cert)] if key_pair else ["+tla"]
    return dcmtk("storescu", *tls, *(["+cf", str(ca)] if ca else []), *extra, "-aec", CALLED_AE,
                 "127.0.0.1", str(port), *map(str, files))


def audit_lines(config) -> list[str]:
    return (config.logs_dir / "dicom-audit.log").read_text().splitlines()


def test_storescu_over_tls_is_stored_like_plain_and_the_audit_names_its_certificate(tls_adapter, platform, pki,
                                                                                    ct5):
    config, store = platform
    proc = storescu_tls(tls_adapter.tls_port, ct5, pki.client, pki.ca)
    assert proc.returncode == 0, proc.stderr
    job = wait_for(lambda: jobs(store))[0]
    assert_job_input_is(config, job, ct5)
    assert any("ACCEPT" in line and "tls='CN=MODALITY-CT1, O=claractl tests'" in line for line in audit_lines(config))
    # The plain port stays as it was.
    assert dcmtk("echoscu", "-aec", CALLED_AE, "127.0.0.1", str(tls_adapter.port)).returncode == 0
    assert tls_adapter.status()["tls_port"] == tls_adapter.tls_port


def test_plain_dicom_on_the_tls_port_is_refused_and_audited(tls_adapter, platform, ct5):
    proc = dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(tls_adapter.tls_port), str(ct5[0]), timeout=60)
    assert proc.returncode != 0
    wait_for(lambda: any("TLS handshake failed" in line for line in audit_lines(platform[0])))


def test_verify_clients_requires_a_certificate_from_our_ca(platform, pki, ct5):
    config, store = platform
    a = DicomAdapter(with_tls(config, pki, verify_clients=True), store, export_agent=False, close_interval=0.05)
    a.start()
    try:
        anonymous = storescu_tls(a.tls_port, ct5[:1], None, pki.ca)
        stranger = storescu_tls(a.tls_port, ct5[:1], pki.stranger, pki.ca)
        trusted = storescu_tls(a.tls_port, ct5[:1], pki.client, pki.ca)
    finally:
        a.stop()
    assert anonymous.returncode != 0 and stranger.returncode != 0
    assert trusted.returncode == 0, trusted.stderr
    refusals = [line for line in audit_lines(config) if "TLS handshake failed" in line]
    assert len(refusals) == 2 and any("certificate" in line.lower() for line in refusals)


def test_an_unusable_certificate_stops_the_start_naming_the_file(platform, pki, tmp_path):
    config, store = platform
    with_tls(config, pki)
    config.dicom.tls_private_key = str(tmp_path / "missing.key")
    a = DicomAdapter(config, store, export_agent=False)
    with pytest.raises(TlsConfigError, match="^dicom-adapter tls: .*missing.key"):
        a.start()
    assert a.status()["running"] is False


# ----------------------------------------------------------------------------- exports over TLS
@pytest.fixture
def storescp_tls(tmp_path, pki):
    """dcmtk storescp over TLS, requiring a client certificate from the test CA."""
    out = tmp_path / "tls-out"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen([str(DCMTK / "storescp"), "+tls", str(pki.pacs.key), str(pki.pacs.cert), "+cf",
                             str(pki.ca), "-rc", "-aet", "ARCHIVE", "-od", str(out), str(port)],
                            env=PEER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)
    yield port, out
    proc.terminate()
    proc.wait(timeout=10)


def _job_with_results(platform, adapter_port, ct5):
    config, store = platform
    dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(adapter_port), str(ct5[0]), check=True)
    job = wait_for(lambda: jobs(store))[0]
    results = config.payloads_dir / job.payload_id / "operators" / "seg"
    results.mkdir(parents=True)
    for f in ct5[1:3]:
        (results / f.name).write_bytes(f.read_bytes())
    with store.session() as s:
        s.get(Job, job.id).state = JobState.STOPPED
    return job


def _export(platform, job, destination: str) -> ExportTask:
    config, store = platform
    with store.session() as s:
        task = ExportTask(job_id=job.id, agent="ClaraSCU", destination=destination, files=["operators/seg"],
                          max_attempts=2)
        s.add(task)
        s.flush()
        task_id = task.id
    agent = DicomExportAgent(config, store, poll_interval=0.05, backoff_base=0.1)
    agent.start()
    try:
        wait_for(lambda: _state(store, task_id) in (ExportState.SUCCEEDED, ExportState.FAILED), timeout=60)
    finally:
        agent.stop()
    with store.session() as s:
        return s.get(ExportTask, task_id)


def _state(store, task_id):
    with store.session() as s:
        return s.get(ExportTask, task_id).state


def test_export_to_a_tls_destination_presents_our_certificate(tls_adapter, platform, pki, ct5, storescp_tls):
    port, out = storescp_tls
    job = _job_with_results(platform, tls_adapter.port, ct5)
    with platform[1].session() as s:
        s.add(Destination(name="archive-tls", ae_title="ARCHIVE", host="127.0.0.1", port=port, tls=True))
    task = _export(platform, job, "archive-tls")
    assert task.state == ExportState.SUCCEEDED, task.message
    assert len(list(out.iterdir())) == 2


def test_a_destination_whose_certificate_we_do_not_trust_fails_saying_so(tls_adapter, platform, pki, ct5, tmp_path):
    port = free_port()
    proc = subprocess.Popen([str(DCMTK / "storescp"), "+tls", str(pki.stranger.key), str(pki.stranger.cert),
                             "-ic", "-aet", "ARCHIVE", "-od", str(tmp_path), str(port)],
                            env=PEER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        job = _job_with_results(platform, tls_adapter.port, ct5)
        with platform[1].session() as s:
            s.add(Destination(name="impostor", ae_title="ARCHIVE", host="127.0.0.1", port=port, tls=True))
        task = _export(platform, job, "impostor")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert task.state == ExportState.FAILED and "certificate verify failed" in task.message, task.message
    assert not list(tmp_path.glob("CT*"))


def test_echo_over_tls_to_our_own_tls_port(tls_adapter, platform, pki):
    config, _ = platform
    context = client_context(config.dicom)            # our certificate as the client's
    assert echo(Peer(CALLED_AE, "127.0.0.1", tls_adapter.tls_port, context), calling_ae="CLARATEST") == \
        "0x0000 Success"


# ----------------------------------------------------------------------------- Orthanc with DICOM TLS
@pytest.fixture
def orthanc_tls(tmp_path, pki, tls_adapter):
    """Orthanc with DICOM TLS required both ways; it knows our TLS port as modality "clara"."""
    pacs = OrthancPacs(tmp_path / "orthanc", "ORTHANC",
                       tls={"certificate": pki.pacs.cert, "private_key": pki.pacs.key, "trusted": pki.ca,
                            "require_client_certificate": True},
                       modalities={"clara": {"AET": CALLED_AE, "Host": "127.0.0.1", "Port": tls_adapter.tls_port,
                                             "UseDicomTls": True}})
    with pacs:
        yield pacs.http, pacs.dicom_port


def test_orthanc_sends_over_tls_and_gets_the_results_back_over_tls(orthanc_tls, tls_adapter, platform, ct5):
    config, store = platform
    client, orthanc_port = orthanc_tls
    for f in ct5:
        assert client.post("/instances", content=f.read_bytes()).status_code == 200
    (study,) = client.get("/studies").json()
    r = client.post("/modalities/clara/store", content=study)
    assert r.status_code == 200, r.text
    job = wait_for(lambda: jobs(store), timeout=30)[0]
    assert_job_input_is(config, job, ct5)
    assert any("calling_ae='ORTHANC'" in line and "tls='CN=pacs" in line for line in audit_lines(config))

    # The results go back to Orthanc's TLS port (Orthanc requires our certificate).
    client.delete(f"/studies/{study}")
    results = config.payloads_dir / job.payload_id / "operators" / "seg"
    results.mkdir(parents=True)
    (results / ct5[0].name).write_bytes(ct5[0].read_bytes())
    with store.session() as s:
        s.get(Job, job.id).state = JobState.STOPPED
        s.add(Destination(name="orthanc-tls", ae_title="ORTHANC", host="127.0.0.1", port=orthanc_port, tls=True))
    task = _export(platform, job, "orthanc-tls")
    assert task.state == ExportState.SUCCEEDED, task.message
    assert client.get("/statistics").json()["CountInstances"] == 1


def test_claractl_dicom_send_and_echo_over_tls(platform, pki, ct5):
    """`claractl dicom send --tls …` to a TLS port that requires a client certificate."""
    from typer.testing import CliRunner

    from claractl.cli.main import app
    config, store = platform
    a = DicomAdapter(with_tls(config, pki, verify_clients=True), store, export_agent=False, close_interval=0.05)
    a.start()
    try:
        to = f"{CALLED_AE}@127.0.0.1:{a.tls_port}"
        tls = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.client.cert), "--tls-key", str(pki.client.key)]
        runner = CliRunner()
        sent = runner.invoke(app, ["--no-color", "dicom", "send", *map(str, ct5), "--to", to, "--calling-ae",
                                   "CLARATEST", "--json", *tls])
        echoed = runner.invoke(app, ["--no-color", "dicom", "echo", to, "--calling-ae", "CLARATEST", *tls])
        untrusted = runner.invoke(app, ["--no-color", "dicom", "echo", to, "--calling-ae", "CLARATEST", "--tls"])
        keyless = runner.invoke(app, ["--no-color", "dicom", "echo", to, "--tls-cert", str(pki.client.cert)])
    finally:
        a.stop()
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.output)["accepted"] == len(ct5)
    assert echoed.exit_code == 0 and "0x0000 Success" in echoed.output
    assert untrusted.exit_code == 1 and "certificate verify failed" in " ".join(untrusted.output.split())
    assert keyless.exit_code == 2 and "--tls-cert and --tls-key go together" in " ".join(keyless.output.split())
