"""Hand-built DICOM upper-layer PDUs for malformed-input tests (PS3.8 9.3)."""

from __future__ import annotations

import socket
import struct
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.filebase import DicomBytesIO

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


def _uid(u: str) -> bytes:
    b = u.encode()
    return b + b"\0" if len(b) % 2 else b


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def associate_rq(calling: bytes | str, called: bytes | str, contexts: list[tuple[int, str, str]],
                 version: int = 1) -> bytes:
    def ae(x):
        x = x.encode() if isinstance(x, str) else x
        return x[:16].ljust(16, b" ")
    body = struct.pack(">HH", version, 0) + ae(called) + ae(calling) + b"\0" * 32
    body += _item(0x10, APP_CONTEXT)
    for cid, abstract, ts in contexts:
        body += _item(0x20, bytes([cid, 0, 0, 0]) + _item(0x30, _uid(abstract)) + _item(0x40, _uid(ts)))
    body += _item(0x50, _item(0x51, struct.pack(">I", 16384)) + _item(0x52, _uid("1.2.3.4")))
    return pdu(0x01, body)


def p_data(ctx_id: int, data: bytes, command: bool, last: bool = True) -> bytes:
    header = (0x01 if command else 0x00) | (0x02 if last else 0x00)
    pdv = struct.pack(">IBB", len(data) + 2, ctx_id, header) + data
    return pdu(0x04, pdv)


def encode_implicit(ds: Dataset) -> bytes:
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, True
    write_dataset(buf, ds)
    return buf.getvalue()


def store_command(sop_class: str, sop_instance: str, message_id: int = 1) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = sop_class
    cmd.CommandField = 0x0001
    cmd.MessageID = message_id
    cmd.Priority = 0
    cmd.CommandDataSetType = 0x0000
    cmd.AffectedSOPInstanceUID = sop_instance
    body = encode_implicit(cmd)
    gl = Dataset()
    gl.CommandGroupLength = len(body)
    return encode_implicit(gl) + body


def echo_command(message_id: int = 1) -> bytes:
    cmd = Dataset()
    cmd.AffectedSOPClassUID = VERIFICATION
    cmd.CommandField = 0x0030
    cmd.MessageID = message_id
    cmd.CommandDataSetType = 0x0101
    body = encode_implicit(cmd)
    gl = Dataset()
    gl.CommandGroupLength = len(body)
    return encode_implicit(gl) + body


class RawPeer:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self) -> tuple[int, bytes] | None:
        head = self._read(6)
        if head is None:
            return None
        kind, _, length = struct.unpack(">BBI", head)
        body = self._read(length)
        return kind, body or b""

    def _read(self, n: int) -> bytes | None:
        out = b""
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except (ConnectionResetError, socket.timeout):
                return None
            if not chunk:
                return None
            out += chunk
        return out

    def associate(self, calling: str, called: str, contexts) -> int:
        """Send A-ASSOCIATE-RQ; return the response PDU type (2 = AC, 3 = RJ)."""
        self.send(associate_rq(calling, called, contexts))
        rsp = self.read_pdu()
        return rsp[0] if rsp else 0

    def read_status(self) -> int | None:
        """Read P-DATA PDUs until a complete command set; return its Status."""
        data = b""
        while True:
            rsp = self.read_pdu()
            if rsp is None or rsp[0] != 0x04:
                return None
            body = rsp[1]
            i = 0
            while i < len(body):
                (length,) = struct.unpack(">I", body[i:i + 4])
                header = body[i + 5]
                data += body[i + 6:i + 4 + length]
                i += 4 + length
                if header & 0x02:
                    ds = read_dataset(BytesIO(data), is_implicit_VR=True, is_little_endian=True)
                    return int(ds.Status)

    def release(self) -> None:
        try:
            self.send(pdu(0x05, b"\0" * 4))
            self.read_pdu()
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
