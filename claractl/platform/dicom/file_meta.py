"""Encode a DICOM Part 10 header (preamble, 'DICM', file meta group) directly.

Per instance this is ~10x cheaper than building a pydicom Dataset and writing it; the layout
is fixed by PS3.10 7.1 (explicit VR little endian).
"""

from __future__ import annotations

import struct

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

_PREFIX = b"\0" * 128 + b"DICM"


def _short(elem: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    return struct.pack("<HH2sH", 0x0002, elem, vr, len(value)) + value


def encode_part10_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str,
                         source_ae: str = "") -> bytes:
    body = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01"
    body += _short(0x0002, b"UI", sop_class_uid.encode("ascii"), b"\0")
    body += _short(0x0003, b"UI", sop_instance_uid.encode("ascii", "replace"), b"\0")
    body += _short(0x0010, b"UI", transfer_syntax_uid.encode("ascii"), b"\0")
    body += _short(0x0012, b"UI", str(PYNETDICOM_IMPLEMENTATION_UID).encode("ascii"), b"\0")
    body += _short(0x0013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")[:16], b" ")
    if source_ae:
        body += _short(0x0016, b"AE", source_ae.encode("ascii", "replace")[:16], b" ")
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(body))
    return _PREFIX + group_length + body
