"""The DICOM upper layer as an acceptor, for Verification and Storage only (PS3.8, PS3.7).

pynetdicom decodes and encodes the association PDUs and negotiates the presentation contexts;
this module runs the rest of the protocol itself, one thread per connection, because pynetdicom's
reactor threads cost ~2.7 ms of CPU per received instance (docs/dicom.md "Performance"): here a
P-DATA PDU is read with `recv_into` into one reused buffer and each dataset fragment goes straight
to the `StoreSink` the handler returns, so a dataset streams to disk while it arrives.

    scp = StoreSCP(handler, host, port, ...); scp.start(); scp.port; scp.stop()

The handler decides who may associate (`on_associate`) and what becomes of each C-STORE
(`begin_store` → sink.write(fragment)… → sink.finish() → status → response → sink.settle());
see `ScpHandler`.
"""

from __future__ import annotations

import functools
import logging
import socket
import socketserver
import ssl
import struct
import threading
from dataclasses import dataclass
from typing import Protocol

from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext, negotiate_as_acceptor

from claractl.platform.dicom.tls import peer_subject

log = logging.getLogger("claractl.dicom")

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"

# PDU types (PS3.8 9.3).
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = 1, 2, 3, 4, 5, 6, 7
# A-ABORT reasons from the service provider (PS3.8 9.3.8).
UNRECOGNISED_PDU, UNEXPECTED_PDU, INVALID_PARAMETER = 0x01, 0x02, 0x06
# A-ASSOCIATE-RJ (result, source, reason) for "protocol version not supported".
REJECT_PROTOCOL_VERSION = (0x01, 0x02, 0x02)

C_STORE_RQ, C_STORE_RSP, C_ECHO_RQ, C_ECHO_RSP = 0x0001, 0x8001, 0x0030, 0x8030
NO_DATASET = 0x0101

MAX_REMEMBERED_RQ = 64 * 1024      # storescu's ~120 proposed contexts take ~10 KiB

_HEADER = struct.Struct(">BBI")
_PDV = struct.Struct(">IBB")
_ELEMENT = struct.Struct("<HHI")


class ProtocolError(Exception):
    """The peer broke the protocol; the association is aborted with `reason`."""

    def __init__(self, message: str, reason: int = 0x00) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Association:
    calling_ae: str
    called_ae: str
    peer_host: str
    peer_port: int
    tls: str | None = None        # over TLS: the client certificate's subject ("" without one)

    @property
    def peer(self) -> str:
        return f"{self.peer_host}:{self.peer_port}"


@dataclass(frozen=True)
class StoreRequest:
    message_id: int
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: UID


class StoreSink(Protocol):
    def write(self, fragment: memoryview) -> None: ...
    def finish(self) -> tuple[int, str]: ...          # (C-STORE status, error comment)
    def settle(self) -> None: ...                     # after the response went out (or failed to)
    def discard(self) -> None: ...                    # the dataset never completed


class ScpHandler(Protocol):
    def on_associate(self, assoc: Association) -> tuple[tuple[int, int, int] | None, str]: ...
    def on_malformed_request(self, peer: str, reason: str) -> None: ...
    def on_closed(self, assoc: Association) -> None: ...
    def begin_store(self, assoc: Association, request: StoreRequest) -> StoreSink: ...


# ----------------------------------------------------------------------------- encoding
def _pdu(pdu_type: int, body: bytes) -> bytes:
    return _HEADER.pack(pdu_type, 0, len(body)) + body


def _abort_pdu(reason: int) -> bytes:
    return _pdu(ABORT, bytes((0, 0, 0x02, reason)))


def _reject_pdu(result: int, source: int, reason: int) -> bytes:
    return _pdu(ASSOCIATE_RJ, bytes((0, result, source, reason)))


def _element(elem: int, value: bytes, pad: bytes = b"\0") -> bytes:
    if len(value) % 2:
        value += pad
    return _ELEMENT.pack(0x0000, elem, len(value)) + value


def _us(elem: int, value: int) -> bytes:
    return _ELEMENT.pack(0x0000, elem, 2) + struct.pack("<H", value)


def encode_response(command: int, message_id: int, sop_class: str, status: int,
                    sop_instance: str = "", comment: str = "") -> bytes:
    """A C-STORE-RSP or C-ECHO-RSP command set (implicit VR little endian, PS3.7 9.3)."""
    body = _element(0x0002, sop_class.encode("ascii", "replace"))
    body += _us(0x0100, command) + _us(0x0120, message_id) + _us(0x0800, NO_DATASET) + _us(0x0900, status)
    if comment:
        body += _element(0x0902, comment.encode("ascii", "replace")[:64], b" ")
    if sop_instance:
        body += _element(0x1000, sop_instance.encode("ascii", "replace"))
    return _ELEMENT.pack(0x0000, 0x0000, 4) + struct.pack("<I", len(body)) + body


def decode_command(data: bytes | bytearray) -> dict[int, bytes]:
    """Command set elements (group 0000, implicit VR little endian) as {element: raw value}."""
    out: dict[int, bytes] = {}
    view, pos, end = memoryview(data), 0, len(data)
    while pos < end:
        if end - pos < 8:
            raise ProtocolError("command set ends inside an element header", INVALID_PARAMETER)
        group, elem, length = _ELEMENT.unpack_from(view, pos)
        pos += 8
        if group != 0x0000 or length > end - pos:
            raise ProtocolError(f"invalid command set element ({group:04X},{elem:04X})", INVALID_PARAMETER)
        out[elem] = bytes(view[pos:pos + length])
        pos += length
    return out


def _command_us(cmd: dict[int, bytes], elem: int) -> int:
    raw = cmd.get(elem)
    if raw is None or len(raw) != 2:
        raise ProtocolError(f"command set element (0000,{elem:04X}) missing or not US", INVALID_PARAMETER)
    return struct.unpack("<H", raw)[0]


def _command_ui(cmd: dict[int, bytes], elem: int) -> str:
    return cmd.get(elem, b"").decode("ascii", "replace").rstrip("\0 ")


def p_data_fragments(context_id: int, data: bytes, command: bool, max_pdu: int) -> list[bytes]:
    """P-DATA-TF PDUs carrying `data` as one message part, each within the peer's maximum."""
    step = max(max_pdu - 6, 1) if max_pdu else max(len(data), 1)
    out = []
    for start in range(0, max(len(data), 1), step):
        chunk = data[start:start + step]
        control = (1 if command else 0) | (2 if start + step >= len(data) else 0)
        out.append(_pdu(P_DATA, _PDV.pack(len(chunk) + 2, context_id, control) + chunk))
    return out


# ----------------------------------------------------------------------------- negotiation
def _supported_contexts(storage_uids: list[str], transfer_syntaxes: list[str]) -> list[PresentationContext]:
    contexts = []
    for uid in [*storage_uids, VERIFICATION]:
        cx = PresentationContext()
        cx.abstract_syntax = UID(uid)
        cx.transfer_syntax = list(transfer_syntaxes)
        contexts.append(cx)
    return contexts


def build_accept(rq: A_ASSOCIATE, supported: list[PresentationContext], max_pdu: int
                 ) -> tuple[bytes, dict[int, UID], int]:
    """A-ASSOCIATE-AC bytes, accepted contexts {id: transfer syntax}, the peer's max PDU."""
    peer_max, roles, async_ops = 0, {}, None
    for item in rq.user_information:
        if isinstance(item, MaximumLengthNotification):
            peer_max = int(item.maximum_length_received or 0)
        elif isinstance(item, SCP_SCU_RoleSelectionNegotiation):
            roles[item.sop_class_uid] = (item.scu_role, item.scp_role)
        elif isinstance(item, AsynchronousOperationsWindowNegotiation):
            async_ops = item
    results, role_items = negotiate_as_acceptor(rq.presentation_context_definition_list, supported, roles or None)
    max_item = MaximumLengthNotification()
    max_item.maximum_length_received = max_pdu
    uid_item = ImplementationClassUIDNotification()
    uid_item.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    version_item = ImplementationVersionNameNotification()
    version_item.implementation_version_name = PYNETDICOM_IMPLEMENTATION_VERSION
    user_info = [max_item, uid_item, version_item, *role_items]
    if async_ops is not None:     # we perform and invoke one operation at a time
        reply = AsynchronousOperationsWindowNegotiation()
        reply.maximum_number_operations_invoked = 1
        reply.maximum_number_operations_performed = 1
        user_info.append(reply)
    ac = A_ASSOCIATE()
    ac.application_context_name = UID(APPLICATION_CONTEXT)
    ac.calling_ae_title = rq.calling_ae_title
    ac.called_ae_title = rq.called_ae_title
    ac.result, ac.result_source = 0x00, 0x01
    ac.presentation_context_definition_results_list = results
    ac.user_information = user_info
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    accepted = {int(cx.context_id): UID(cx.transfer_syntax[0]) for cx in results if cx.result == 0x00}
    return pdu.encode(), accepted, peer_max


@dataclass(frozen=True)
class Offer:
    """An A-ASSOCIATE-RQ decoded, and what we would answer if the handler lets it in."""
    protocol_version: int
    calling_ae: str
    called_ae: str
    accept: bytes                       # the A-ASSOCIATE-AC PDU
    contexts: tuple[tuple[int, UID], ...]
    peer_max: int


def make_offer(raw: bytes, supported: list[PresentationContext], max_pdu: int) -> Offer:
    pdu = A_ASSOCIATE_RQ()
    pdu.decode(raw)
    rq = pdu.to_primitive()
    calling, called = str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip()
    if not pdu.protocol_version & 0x0001:
        return Offer(pdu.protocol_version, calling, called, b"", (), 0)
    ac, contexts, peer_max = build_accept(rq, supported, max_pdu)
    return Offer(pdu.protocol_version, calling, called, ac, tuple(contexts.items()), peer_max)


# ----------------------------------------------------------------------------- one connection
class _Connection:
    def __init__(self, scp: StoreSCP, sock: socket.socket, address: tuple) -> None:
        self.scp = scp
        self.sock = sock
        self.peer_host, self.peer_port = str(address[0]), int(address[1])
        self.buffer = bytearray(scp.max_pdu)
        self.view = memoryview(self.buffer)
        self.assoc: Association | None = None
        self.contexts: dict[int, UID] = {}
        self.peer_max = 0
        self.command = bytearray()
        self.pending: tuple[int, StoreRequest, StoreSink] | None = None   # (context, request, sink)
        self.tls_subject: str | None = None      # set by _secure() on a TLS listener

    @property
    def peer(self) -> str:
        return f"{self.peer_host}:{self.peer_port}"

    def serve(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # responses must not wait for ACKs
            self.sock.settimeout(self.scp.acse_timeout)
            if self.scp.ssl_context is not None and not self._secure():
                return
            self._associate()
            if self.assoc is None:
                return
            self.sock.settimeout(self.scp.network_timeout)
            while self._data_transfer_step():
                pass
        except ProtocolError as exc:
            log.warning("DICOM association from %s aborted: %s", self.peer, exc)
            self._send(_abort_pdu(exc.reason))
        except (socket.timeout, TimeoutError):
            log.warning("DICOM association from %s timed out; aborted", self.peer)
            self._send(_abort_pdu(0x00))
        except (ConnectionError, OSError) as exc:
            if self.pending is not None or self.assoc is None:
                log.warning("DICOM connection from %s lost: %s", self.peer, exc)
        except Exception:     # a bug of ours must cost this association only, never the SCP
            log.exception("DICOM association from %s aborted by an internal error", self.peer)
            self._send(_abort_pdu(0x00))
        finally:
            if self.pending is not None:
                self.pending[2].discard()
                self.pending = None
            if self.assoc is not None:
                self.scp.handler.on_closed(self.assoc)

    def _secure(self) -> bool:
        """The TLS handshake (within the ACSE timeout); a sender that fails it is told nothing more."""
        try:
            tls = self.scp.ssl_context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.scp.handler.on_malformed_request(self.peer, f"TLS handshake failed: {exc}")
            return False
        self.scp.swap_socket(self.sock, tls)
        self.sock = tls
        self.tls_subject = peer_subject(tls)
        return True

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def _read_into(self, view: memoryview) -> None:
        while view:
            n = self.sock.recv_into(view)
            if not n:
                raise ConnectionResetError("peer closed the connection")
            view = view[n:]

    def _read_pdu(self, limit: int) -> tuple[int, memoryview]:
        header = bytearray(6)
        self._read_into(memoryview(header))
        pdu_type, _, length = _HEADER.unpack(header)
        if pdu_type not in (ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT):
            raise ProtocolError(f"unrecognised PDU type 0x{pdu_type:02X}", UNRECOGNISED_PDU)
        if length > limit:
            raise ProtocolError(f"PDU of {length} bytes exceeds the {limit} we accept", INVALID_PARAMETER)
        if length > len(self.buffer):
            self.buffer = bytearray(length)
            self.view = memoryview(self.buffer)
        body = self.view[:length]
        self._read_into(body)
        return pdu_type, body

    # ------------------------------------------------------------------ association establishment
    def _associate(self) -> None:
        pdu_type, body = self._read_pdu(self.scp.max_request_pdu)
        if pdu_type != ASSOCIATE_RQ:
            raise ProtocolError(f"PDU type 0x{pdu_type:02X} before A-ASSOCIATE-RQ", UNEXPECTED_PDU)
        try:
            offer = self.scp.negotiate(_HEADER.pack(pdu_type, 0, len(body)) + bytes(body))
        except Exception as exc:
            self.scp.handler.on_malformed_request(self.peer, f"malformed A-ASSOCIATE-RQ: {exc}")
            raise ProtocolError(f"malformed A-ASSOCIATE-RQ: {exc}", INVALID_PARAMETER) from None
        if not offer.protocol_version & 0x0001:
            self.scp.handler.on_malformed_request(self.peer, f"protocol version 0x{offer.protocol_version:04X}")
            self._send(_reject_pdu(*REJECT_PROTOCOL_VERSION))
            return
        assoc = Association(offer.calling_ae, offer.called_ae, self.peer_host, self.peer_port, self.tls_subject)
        rejection, _ = self.scp.handler.on_associate(assoc)     # asked every time, never cached
        if rejection is not None:
            self._send(_reject_pdu(*rejection))
            return
        self.assoc = assoc    # from here on on_closed is owed
        self.contexts, self.peer_max = dict(offer.contexts), offer.peer_max
        self.sock.sendall(offer.accept)

    # ------------------------------------------------------------------ data transfer
    def _data_transfer_step(self) -> bool:
        pdu_type, body = self._read_pdu(self.scp.max_pdu)
        if pdu_type == P_DATA:
            self._p_data(body)
            return True
        if pdu_type == RELEASE_RQ:
            if self.pending is not None:
                raise ProtocolError("A-RELEASE-RQ in the middle of a C-STORE dataset", UNEXPECTED_PDU)
            self.sock.sendall(_pdu(RELEASE_RP, b"\0\0\0\0"))
            return False
        if pdu_type == ABORT:
            if self.pending is not None:
                log.warning("DICOM association from %s aborted by the peer mid-dataset", self.peer)
            return False
        raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} during data transfer", UNEXPECTED_PDU)

    def _p_data(self, body: memoryview) -> None:
        if not body:
            raise ProtocolError("P-DATA-TF without a PDV item", INVALID_PARAMETER)
        pos, end = 0, len(body)
        while pos < end:
            if end - pos < 6:
                raise ProtocolError("PDV item header truncated", INVALID_PARAMETER)
            length, context_id, control = _PDV.unpack_from(body, pos)
            if length < 2 or length > end - pos - 4:
                raise ProtocolError(f"PDV item length {length} does not fit its PDU", INVALID_PARAMETER)
            fragment = body[pos + 6:pos + 4 + length]
            pos += 4 + length
            if context_id not in self.contexts:
                raise ProtocolError(f"presentation context {context_id} was not accepted", INVALID_PARAMETER)
            if control & 1:
                self._command_fragment(context_id, fragment, last=bool(control & 2))
            else:
                self._dataset_fragment(context_id, fragment, last=bool(control & 2))

    def _command_fragment(self, context_id: int, fragment: memoryview, last: bool) -> None:
        if self.pending is not None:
            raise ProtocolError("command fragment while a dataset is expected", UNEXPECTED_PDU)
        self.command += fragment
        if len(self.command) > 65536:
            raise ProtocolError("command set larger than 64 KiB", INVALID_PARAMETER)
        if not last:
            return
        cmd = decode_command(self.command)
        self.command = bytearray()
        field, message_id = _command_us(cmd, 0x0100), _command_us(cmd, 0x0110)
        transfer_syntax = self.contexts[context_id]
        if field == C_ECHO_RQ:
            self._respond(context_id, encode_response(C_ECHO_RSP, message_id, _command_ui(cmd, 0x0002), 0x0000))
            return
        if field != C_STORE_RQ:
            raise ProtocolError(f"DIMSE command 0x{field:04X} is not supported here", UNEXPECTED_PDU)
        request = StoreRequest(message_id, _command_ui(cmd, 0x0002), _command_ui(cmd, 0x1000), transfer_syntax)
        if _command_us(cmd, 0x0800) == NO_DATASET:
            raise ProtocolError("C-STORE-RQ without a dataset", INVALID_PARAMETER)
        self.pending = (context_id, request, self.scp.handler.begin_store(self.assoc, request))

    def _dataset_fragment(self, context_id: int, fragment: memoryview, last: bool) -> None:
        if self.pending is None or self.pending[0] != context_id:
            raise ProtocolError("dataset fragment without its C-STORE-RQ", UNEXPECTED_PDU)
        _, request, sink = self.pending
        sink.write(fragment)
        if not last:
            return
        self.pending = None
        status, comment = sink.finish()
        try:
            self._respond(context_id, encode_response(C_STORE_RSP, request.message_id, request.sop_class_uid,
                                                      status, request.sop_instance_uid, comment))
        finally:
            sink.settle()     # work that need not delay the response

    def _respond(self, context_id: int, command: bytes) -> None:
        for pdu in p_data_fragments(context_id, command, True, self.peer_max):
            self.sock.sendall(pdu)


# ----------------------------------------------------------------------------- the server
class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = False      # server_close() joins the connection threads
    block_on_close = True

    def __init__(self, scp: StoreSCP, address: tuple[str, int]) -> None:
        self.scp = scp
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _RequestHandler)

    def verify_request(self, request, client_address) -> bool:
        # A hard cap on connection threads; the handler's own limit rejects associations politely.
        with self.scp._lock:
            if self.scp._open >= self.scp.max_connections:
                log.warning("DICOM connection from %s closed: %d connections open", client_address[0],
                            self.scp._open)
                return False
            self.scp._open += 1
            return True


class _RequestHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        scp = self.server.scp
        with scp._lock:
            scp._sockets.add(self.request)
        connection = _Connection(scp, self.request, self.client_address)
        try:
            connection.serve()
        finally:
            with scp._lock:
                scp._open -= 1
                scp._sockets.discard(self.request)
                scp._sockets.discard(connection.sock)
            if connection.sock is not self.request:      # the TLS socket: closed here, the server
                try:                                     # closes only the one it accepted
                    connection.sock.close()
                except OSError:
                    pass


class StoreSCP:
    def __init__(self, handler: ScpHandler, host: str, port: int, *, storage_sop_classes: list[str],
                 transfer_syntaxes: list[str], max_connections: int = 125, max_pdu: int = 4 * 1024 * 1024,
                 acse_timeout: float = 30, network_timeout: float = 60,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context          # a TLS listener: every connection starts with the handshake
        self.address = (host, port)
        self.supported_contexts = _supported_contexts(storage_sop_classes, transfer_syntaxes)
        self.max_connections = max_connections
        self.max_pdu = max_pdu
        self.max_request_pdu = 1024 * 1024     # an A-ASSOCIATE-RQ with every storage class fits easily
        self.acse_timeout = acse_timeout
        self.network_timeout = network_timeout
        self._lock = threading.Lock()
        self._negotiating = threading.Lock()
        # A sender proposes the same contexts each time; pynetdicom spends ~10 ms of Python per
        # A-ASSOCIATE-RQ (it validates every UID), so the outcome is kept per request bytes.
        self._offers = functools.lru_cache(maxsize=64)(
            lambda raw: make_offer(raw, self.supported_contexts, self.max_pdu))
        self._open = 0
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def negotiate(self, raw: bytes) -> Offer:
        """The Offer for an A-ASSOCIATE-RQ; one at a time, so that associations opened together
        by the same sender are negotiated once (it is CPU under the GIL either way)."""
        with self._negotiating:
            if len(raw) > MAX_REMEMBERED_RQ:     # bounded memory: 64 × 64 KiB at most
                return make_offer(raw, self.supported_contexts, self.max_pdu)
            return self._offers(raw)

    def swap_socket(self, old: socket.socket, new: socket.socket) -> None:
        """After the TLS handshake the connection's socket object is a new one: stop() must reach it."""
        with self._lock:
            self._sockets.discard(old)
            self._sockets.add(new)

    def start(self) -> None:
        self._server = _Server(self, self.address)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="dicom-scp", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self.address[1]

    @property
    def connections_open(self) -> int:
        with self._lock:
            return self._open

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:       # wake every connection thread; each discards its unfinished dataset
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        server.server_close()  # joins them
