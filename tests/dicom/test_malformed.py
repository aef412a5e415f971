"""Malformed input: after each case the SCP still answers a normal C-ECHO and C-STORE."""

from __future__ import annotations

import os
import struct
import zlib

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from tests.dicom.conftest import CALLED_AE, dataset_bytes, wait_for
from tests.dicom.rawpdu import (CT, DEFLATED, EXPLICIT_LE, VERIFICATION, RawPeer, associate_rq, echo_command,
                                p_data, pdu, store_command)

CTX = [(1, CT, EXPLICIT_LE), (3, VERIFICATION, EXPLICIT_LE), (5, CT, DEFLATED)]


def _good_dataset(ct5) -> tuple[bytes, str]:
    uid = str(pydicom.dcmread(ct5[0], stop_before_pixels=True).SOPInstanceUID)
    return dataset_bytes(ct5[0]), uid


def _store_raw(port: int, dataset: bytes, sop_uid: str, ctx: int = 1) -> int | None:
    peer = RawPeer(port)
    try:
        assert peer.associate("CLARATEST", CALLED_AE, CTX) == 0x02
        peer.send(p_data(ctx, store_command(CT, sop_uid), command=True))
        peer.send(p_data(ctx, dataset, command=False))
        return peer.read_status()
    finally:
        peer.close()


def _corrupt(raw: bytes, marker: bytes, replacement: bytes, offset: int = 0) -> bytes:
    i = raw.index(marker) + offset
    return raw[:i] + replacement + raw[i + len(replacement):]


# --- cases: each takes (port, ct5) and returns the C-STORE status when one is expected ----------

def garbage_bytes(port, ct5):
    p = RawPeer(port); p.send(os.urandom(4096)); p.close()

def garbage_then_wait(port, ct5):
    p = RawPeer(port, timeout=1); p.send(b"\xff" * 64); p.read_pdu(); p.close()

def connect_and_close(port, ct5):
    RawPeer(port).close()

def truncated_associate_rq(port, ct5):
    p = RawPeer(port); p.send(associate_rq("CLARATEST", CALLED_AE, CTX)[:20]); p.close()

def huge_length_associate_rq(port, ct5):
    p = RawPeer(port); p.send(struct.pack(">BBI", 1, 0, 0xFFFFFFF0) + b"\0" * 100); p.close()

def unknown_pdu_type(port, ct5):
    p = RawPeer(port, timeout=2); p.send(pdu(0x09, b"\0" * 10)); p.read_pdu(); p.close()

def p_data_before_association(port, ct5):
    p = RawPeer(port, timeout=2); p.send(p_data(1, echo_command(), command=True)); p.read_pdu(); p.close()

def release_before_association(port, ct5):
    p = RawPeer(port, timeout=2); p.send(pdu(0x05, b"\0" * 4)); p.read_pdu(); p.close()

def abort_before_association(port, ct5):
    p = RawPeer(port); p.send(pdu(0x07, b"\0" * 4)); p.close()

def associate_without_contexts(port, ct5):
    p = RawPeer(port, timeout=2); p.associate("CLARATEST", CALLED_AE, []); p.close()

def wrong_protocol_version(port, ct5):
    p = RawPeer(port, timeout=2); p.send(associate_rq("CLARATEST", CALLED_AE, CTX, version=0x0F00)); p.read_pdu(); p.close()

def control_chars_in_ae_titles(port, ct5):
    p = RawPeer(port, timeout=2)
    # pynetdicom refuses to decode such titles and aborts (7); our access check would reject (3).
    assert p.associate(b"\x00\x01\x1b[31m\xff\xfe", b"\\..\\\x07\x08", CTX) in (0x03, 0x07)
    p.close()

def truncated_p_data(port, ct5):
    p = RawPeer(port); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    full = p_data(1, store_command(CT, "1.2.3.4.5"), command=True)
    p.send(full[: len(full) // 2]); p.close()

def p_data_length_lies(port, ct5):
    p = RawPeer(port, timeout=2); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(struct.pack(">BBI", 4, 0, 5000) + b"\0" * 20); p.close()

def garbage_command_set(port, ct5):
    p = RawPeer(port, timeout=3); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(p_data(1, os.urandom(300), command=True)); p.read_pdu(); p.close()

def zero_length_p_data(port, ct5):
    p = RawPeer(port, timeout=2); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(pdu(0x04, b"")); p.read_pdu(); p.close()

def unnegotiated_context_id(port, ct5):
    p = RawPeer(port, timeout=3); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(p_data(99, echo_command(), command=True)); p.read_pdu(); p.close()

def abort_mid_dataset(port, ct5):
    raw, uid = _good_dataset(ct5)
    p = RawPeer(port); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(p_data(1, store_command(CT, uid), command=True))
    p.send(p_data(1, raw[: len(raw) // 2], command=False, last=False))
    p.send(pdu(0x07, b"\0" * 4)); p.close()

def close_mid_dataset(port, ct5):
    raw, uid = _good_dataset(ct5)
    p = RawPeer(port); assert p.associate("CLARATEST", CALLED_AE, CTX) == 0x02
    p.send(p_data(1, store_command(CT, uid), command=True))
    p.send(p_data(1, raw[: len(raw) // 2], command=False, last=False)); p.close()

def bad_vr(port, ct5):
    raw, uid = _good_dataset(ct5)
    return _store_raw(port, _corrupt(raw, b"PN", b"ZZ"), uid)

def truncated_dataset(port, ct5):
    raw, uid = _good_dataset(ct5)
    return _store_raw(port, raw[: len(raw) - 100], uid)

def element_length_past_end(port, ct5):
    raw, uid = _good_dataset(ct5)
    return _store_raw(port, _corrupt(raw, b"PN", b"\xff\x7f", offset=2), uid)

def garbage_dataset(port, ct5):
    _, uid = _good_dataset(ct5)
    return _store_raw(port, os.urandom(2048), uid)

def empty_dataset(port, ct5):
    _, uid = _good_dataset(ct5)
    return _store_raw(port, b"", uid)

def sop_uid_mismatch(port, ct5):
    raw, _ = _good_dataset(ct5)
    return _store_raw(port, raw, "1.2.3.999")

def path_traversal_uid(port, ct5):
    ds = pydicom.dcmread(ct5[0]); ds.SOPInstanceUID = "../../../../tmp/evil"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    raw = dataset_bytes_of(ds)
    return _store_raw(port, raw, "../../../../tmp/evil")

def bad_deflate_stream(port, ct5):
    _, uid = _good_dataset(ct5)
    return _store_raw(port, zlib.compress(b"not a dataset")[2:] + os.urandom(50), uid, ctx=5)

def missing_group_by_tag(port, ct5):
    ds = pydicom.dcmread(ct5[0]); del ds.StudyInstanceUID
    return _store_raw(port, dataset_bytes_of(ds), str(ds.SOPInstanceUID))

def many_short_connections(port, ct5):
    for _ in range(30):
        RawPeer(port).close()

def pynetdicom_abort_mid_series(port, ct5):
    ae = AE(ae_title="CLARATEST"); ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=CALLED_AE)
    for f in ct5[:3]:
        assert assoc.send_c_store(f).Status == 0
    assoc.abort()


def dataset_bytes_of(ds) -> bytes:
    from io import BytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.filebase import DicomFileLike
    buf = BytesIO(); fp = DicomFileLike(buf); fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return buf.getvalue()


CASES = [garbage_bytes, garbage_then_wait, connect_and_close, truncated_associate_rq, huge_length_associate_rq,
         unknown_pdu_type, p_data_before_association, release_before_association, abort_before_association,
         associate_without_contexts, wrong_protocol_version, control_chars_in_ae_titles, truncated_p_data,
         p_data_length_lies, garbage_command_set, zero_length_p_data, unnegotiated_context_id, abort_mid_dataset,
         close_mid_dataset, many_short_connections, pynetdicom_abort_mid_series]

# Cases that reach the C-STORE handler: the status it must answer.
FAIL = {0xC210, 0xA900}   # cannot understand / does not match SOP class
STATUS_CASES = {bad_vr: {0xC210}, truncated_dataset: {0xC210}, element_length_past_end: {0xC210},
                garbage_dataset: FAIL, empty_dataset: {0xC210}, sop_uid_mismatch: {0xA900},
                bad_deflate_stream: FAIL, missing_group_by_tag: {0xA900}, path_traversal_uid: {0x0000}}


def _still_serves(port: int, ct5) -> None:
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=CALLED_AE)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assert assoc.send_c_store(ct5[4]).Status == 0
    assoc.release()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_protocol_abuse_leaves_scp_serving(adapter, platform, ct5, case):
    config, _ = platform
    case(adapter.port, ct5)
    _still_serves(adapter.port, ct5)
    assert not list(config.root.rglob("*.part"))


@pytest.mark.parametrize("case", list(STATUS_CASES), ids=lambda c: c.__name__)
def test_bad_dataset_gets_failure_status_and_no_file(adapter, platform, ct5, case):
    config, _ = platform
    status = case(adapter.port, ct5)
    assert status in STATUS_CASES[case]
    # In the open group, or already handed to a job payload if the group closed meanwhile. A stored
    # instance's file is written just after the response (it is durable in the spool before).
    def stored_files():
        return list(config.dicom_dir.rglob("*.dcm")) + list(config.payloads_dir.rglob("*.dcm"))
    stored = wait_for(stored_files, timeout=10) if status == 0 else stored_files()
    if status == 0:
        # Stored under a hashed name inside the state dir, never where the UID points.
        assert len(stored) == 1 and config.root in stored[0].parents
        assert stored[0].name.startswith("h") and not os.path.exists("/tmp/evil.dcm")
    else:
        assert stored == []
    _still_serves(adapter.port, ct5)
    assert not list(config.root.rglob("*.part"))
