"""Rejections at association and at C-STORE, each with the right status and no partial file."""

from __future__ import annotations

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from claractl.platform.dicom import DicomAdapter
from claractl.platform.dicom.scu import Attempt, Peer, associate
from claractl.platform.store.models import Source
from tests.dicom.conftest import CALLED_AE, dcmtk, jobs, wait_published


def _associate(port: int, calling: str, called: str) -> Attempt:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    return associate(ae, Peer(called, "127.0.0.1", port))


def _reject(attempt: Attempt) -> tuple[int, int, int]:
    """(result, source, reason) of the A-ASSOCIATE-RJ as it came off the wire."""
    assert attempt.reject is not None, attempt.failure
    return attempt.reject.result, attempt.reject.source, attempt.reject.reason_diagnostic


def _audit(config) -> str:
    return (config.logs_dir / "dicom-audit.log").read_text()


def test_unknown_called_ae_rejected_reason_7(adapter, platform):
    config, _ = platform
    assert _reject(_associate(adapter.port, "CLARATEST", "NOSUCHAE")) == (1, 1, 7)
    proc = dcmtk("echoscu", "-aec", "NOSUCHAE", "127.0.0.1", str(adapter.port))
    assert proc.returncode != 0 and "Called AE Title Not Recognized" in proc.stderr
    assert "REJECT" in _audit(config) and "'NOSUCHAE'" in _audit(config) and "called AE not recognised" in _audit(config)
    assert adapter.status()["associations_rejected"] == 2


def test_fast_reject_always_reported_with_its_reason(adapter):
    """Our SCP rejects within a millisecond; pynetdicom then sometimes (about 1 in 150 here) finds
    the transport closed before its ACSE thread looks and calls it an abort. Our SCU must still
    report the peer's reason, every time."""
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(Verification)
    failures = {associate(ae, Peer("NOSUCHAE", "127.0.0.1", adapter.port)).failure for _ in range(200)}
    assert failures == {"association rejected (result 1, source 1, reason 7: called AE not recognised)"}


def test_unknown_calling_ae_rejected_reason_3(adapter, platform):
    config, _ = platform
    assert _reject(_associate(adapter.port, "STRANGER", CALLED_AE)) == (1, 1, 3)
    proc = dcmtk("echoscu", "-aet", "STRANGER", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port))
    assert proc.returncode != 0 and "Calling AE Title Not Recognized" in proc.stderr
    assert "calling AE not recognised" in _audit(config) and "'STRANGER'" in _audit(config)


def test_known_calling_ae_from_wrong_host_rejected(adapter, platform):
    _, store = platform
    with store.session() as s:
        s.add(Source(name="remote-only", ae_title="REMOTEPACS", host="10.254.254.254"))
    adapter.access.invalidate()
    assert _reject(_associate(adapter.port, "REMOTEPACS", CALLED_AE)) == (1, 1, 3)


def test_unknown_sources_accepted_when_not_enforced(platform):
    config, store = platform
    config.dicom.reject_unknown_sources = False
    a = DicomAdapter(config, store, export_agent=False)
    a.start()
    try:
        assert dcmtk("echoscu", "-aet", "STRANGER", "-aec", CALLED_AE, "127.0.0.1", str(a.port)).returncode == 0
        assert _reject(_associate(a.port, "STRANGER", "NOSUCHAE")) == (1, 1, 7)
    finally:
        a.stop()


@pytest.mark.parametrize("setting", ["reserve_mb", "watermark_percent"])
def test_over_watermark_gives_out_of_resources_and_writes_nothing(platform, ct5, setting):
    config, store = platform
    if setting == "reserve_mb":
        config.dicom.reserve_mb = 10 ** 9          # a reserve bigger than any disk
    else:
        config.dicom.watermark_percent = 0.001     # any used disk is over it
    a = DicomAdapter(config, store, export_agent=False, close_interval=0.05)
    a.start()
    try:
        proc = dcmtk("storescu", "-v", "-aec", CALLED_AE, "127.0.0.1", str(a.port), str(ct5[0]))
        assert "Refused: OutOfResources" in proc.stderr, proc.stderr
        ae = AE(ae_title="CLARATEST")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", a.port, ae_title=CALLED_AE)
        rsp = assoc.send_c_store(ct5[1])
        assoc.release()
        assert rsp.Status == 0xA700
        assert a.status()["out_of_resources"] == 2
        # Nothing stored: not a file, not even a spool segment prepared (no room for one either).
        assert not [p for p in config.dicom_dir.rglob("*") if p.is_file()]
        a.close_due(force=True)
        assert jobs(store) == []
    finally:
        a.stop()


def test_max_associations_rejects_extra(platform):
    config, store = platform
    config.dicom.max_associations = 1
    a = DicomAdapter(config, store, export_agent=False)
    a.start()
    try:
        first = _associate(a.port, "CLARATEST", CALLED_AE)
        assert first.established
        second = _associate(a.port, "CLARATEST", CALLED_AE)
        assert _reject(second) == (2, 3, 2)
        assert "local limit exceeded" in second.failure
        first.assoc.release()
        assert "maximum associations reached" in _audit(config)
    finally:
        a.stop()


def test_duplicate_overwrites_or_keeps(adapter, platform, ct5, tmp_path):
    import pydicom
    config, store = platform
    ds = pydicom.dcmread(ct5[0])
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
    assert assoc.send_c_store(ds).Status == 0
    ds.PatientName = "Changed^Name"
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    wait_published(adapter)
    files = [p for p in config.dicom_dir.rglob("*.dcm")]
    assert len(files) == 1 and pydicom.dcmread(files[0]).PatientName == "Changed^Name"
    config.dicom.overwrite_duplicates = False
    ds.PatientName = "Third^Name"
    assoc = ae.associate("127.0.0.1", adapter.port, ae_title=CALLED_AE)
    assert assoc.send_c_store(ds).Status == 0
    assoc.release()
    wait_published(adapter)
    assert pydicom.dcmread(files[0]).PatientName == "Changed^Name"


def test_idle_connections_do_not_lock_out_peers(adapter, platform):
    """30 sockets that never send an A-ASSOCIATE-RQ (max_associations is 25): others still get in."""
    import socket
    idle = [socket.create_connection(("127.0.0.1", adapter.port)) for _ in range(30)]
    try:
        assoc = _associate(adapter.port, "CLARATEST", CALLED_AE).assoc
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        status = adapter.status()
        assert status["associations_active"] == 1 and status["connections_open"] >= 30
        assoc.release()
    finally:
        for s in idle:
            s.close()


def test_negotiation_is_remembered_only_for_requests_of_ordinary_size(adapter):
    """A sender's repeated A-ASSOCIATE-RQ is negotiated once; one over 64 KiB (here 100 contexts
    of 30 transfer syntaxes each) is still accepted, but never kept in memory."""
    offers = adapter._server._offers
    for _ in range(3):
        assoc = _associate(adapter.port, "CLARATEST", CALLED_AE).assoc
        assert assoc.is_established
        assoc.release()
    assert (offers.cache_info().misses, offers.cache_info().hits) == (1, 2)
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(Verification)
    for i in range(99):
        ae.add_requested_context(f"1.2.826.0.1.3680043.9.9999.{i}",
                                 [f"1.2.826.0.1.3680043.9.9998.{j}" for j in range(29)] + ["1.2.840.10008.1.2"])
    attempt = associate(ae, Peer(CALLED_AE, "127.0.0.1", adapter.port))
    assert attempt.established
    assert attempt.assoc.send_c_echo().Status == 0
    attempt.assoc.release()
    assert offers.cache_info().currsize == 1
