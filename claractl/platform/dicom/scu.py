"""Our SCU: C-ECHO and parallel C-STORE of DICOM files, sent as stored (never decoded).

Used by the export agent and by `claractl dicom echo|send`.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import Verification
from pynetdicom.status import code_to_category

from claractl.platform.dicom.netutil import NODELAY_HANDLER

log = logging.getLogger("claractl.dicom")
MAX_CONTEXTS = 128
_ADDRESS = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d{1,5})$")


class DicomPeerError(Exception):
    """A DICOM peer refused or could not be reached; the message names the peer."""


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int
    tls: ssl.SSLContext | None = field(default=None, compare=False)    # DICOM over TLS (tls.client_context)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


def parse_peer(text: str) -> Peer:
    """'AE@HOST:PORT' → Peer; ValueError with the expected form otherwise."""
    m = _ADDRESS.match(text.strip())
    if not m or not (0 < int(m["port"]) < 65536):
        raise ValueError(f"{text!r} is not AE@HOST:PORT (AE 1-16 chars, port 1-65535)")
    return Peer(m["ae"], m["host"].strip("[]"), int(m["port"]))


@dataclass
class SendResult:
    path: Path
    status: int | None      # DIMSE status, None when nothing was sent
    message: str

    @property
    def ok(self) -> bool:
        return self.status is not None and code_to_category(self.status) in ("Success", "Warning")


def _describe(status: int) -> str:
    return f"0x{status:04X} {code_to_category(status)}"


def _new_ae(calling_ae: str) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = 30
    ae.dimse_timeout = 120
    ae.network_timeout = 120
    ae.connection_timeout = 10
    ae.maximum_pdu_size = 0
    return ae


_REJECT_REASONS = {(1, 3): "calling AE not recognised", (1, 7): "called AE not recognised",
                   (3, 2): "local limit exceeded", (3, 1): "temporary congestion"}


@dataclass
class Attempt:
    """The outcome of an association request."""
    assoc: Association
    reject: A_ASSOCIATE_RJ | None = None     # the peer's A-ASSOCIATE-RJ, if it sent one
    failure: str | None = None               # None once established

    @property
    def established(self) -> bool:
        return self.failure is None


def hand_back_responses(assoc: Association) -> None:
    """Make a requestor association immune to pynetdicom's reactor stealing a DIMSE response.

    pynetdicom (up to 3.0.4, the latest) runs a reactor thread beside the thread that calls
    `send_c_store`. Before each request the caller pauses it: `_reactor_checkpoint.clear()`, then
    it waits until `_is_paused` is true. But `_is_paused` is still true from the reactor's previous
    pause when the reactor has just been woken by the previous request's `set()` and has not yet
    run: the caller sends at once, the reactor then runs, takes the fast peer's C-STORE-RSP off the
    message queue with `get_msg(block=False)`, logs "Received unexpected C-STORE service message"
    and drops it; the caller waits for a response that never comes until the peer (or the DIMSE
    timeout) aborts. 1 send of 100 instances in ~15 hung this way, against dcmtk storescp as well
    as our SCP (docs/dicom.md "The send hang"). Here a response the reactor takes is put back on
    the queue the caller waits on; requests still go to pynetdicom's own handling.
    """
    serve_request = assoc._serve_request

    def serve_or_hand_back(msg, context_id: int) -> None:
        if msg.is_valid_response:
            assoc.dimse.msg_queue.put((context_id, msg))
        else:
            serve_request(msg, context_id)

    assoc._serve_request = serve_or_hand_back


def associate(ae: AE, peer: Peer) -> Attempt:
    """Request an association and say why it failed, naming the peer's reject reason.

    The A-ASSOCIATE-RJ PDU is taken as it arrives: when a peer rejects faster than pynetdicom's
    ACSE thread wakes up, pynetdicom finds the transport already closed and reports an abort
    with no reject primitive, which would hide the peer's reason.
    """
    received: list = []

    def keep(event) -> None:
        received.append(event.pdu)

    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title,
                         evt_handlers=[NODELAY_HANDLER, (evt.EVT_PDU_RECV, keep)],
                         tls_args=(peer.tls, peer.host) if peer.tls is not None else None)
    assoc.unbind(evt.EVT_PDU_RECV, keep)     # only the establishment PDUs are of interest
    if assoc.is_established:
        hand_back_responses(assoc)
        return Attempt(assoc)
    for rj in (pdu for pdu in received if isinstance(pdu, A_ASSOCIATE_RJ)):
        why = _REJECT_REASONS.get((rj.source, rj.reason_diagnostic), "no reason given")
        return Attempt(assoc, rj, f"association rejected (result {rj.result}, source {rj.source}, "
                                  f"reason {rj.reason_diagnostic}: {why})")
    if received:
        return Attempt(assoc, failure="association aborted by peer")
    if peer.tls is not None and (why := _tls_failure(peer)):
        return Attempt(assoc, failure=why)
    return Attempt(assoc, failure="cannot connect (connection refused, closed, unreachable or timed out)")


def _tls_failure(peer: Peer) -> str | None:
    """Why a TLS connection to the peer fails, when it is the handshake (pynetdicom reports any
    failure as a connection error): "TLS handshake failed: certificate verify failed: …"."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=10) as raw:
            with peer.tls.wrap_socket(raw, server_hostname=peer.host):
                return None
    except ssl.SSLCertVerificationError as exc:
        return f"TLS handshake failed: certificate verify failed: {exc.verify_message}"
    except ssl.SSLError as exc:
        return f"TLS handshake failed: {exc.reason or exc}"
    except OSError:
        return None


def echo(peer: Peer, calling_ae: str = "CLARACTL") -> str:
    """C-ECHO; returns the status text or raises DicomPeerError."""
    ae = _new_ae(calling_ae)
    ae.add_requested_context(Verification)
    attempt = associate(ae, peer)
    if not attempt.established:
        raise DicomPeerError(f"{peer}: {attempt.failure}")
    assoc = attempt.assoc
    try:
        rsp = assoc.send_c_echo()
    finally:
        if assoc.is_established:
            assoc.release()
    if not rsp or "Status" not in rsp:
        raise DicomPeerError(f"{peer}: no C-ECHO response")
    return _describe(int(rsp.Status))


def is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files given, directories expanded recursively (sorted), DICOM Part 10 only."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        candidates = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        out.extend(q for q in candidates if is_dicom_file(q))
    return out


def _send_chunk(peer: Peer, calling_ae: str, files: list[Path], results: dict[Path, SendResult],
                on_done: Callable[[SendResult], None] | None) -> None:
    def done(r: SendResult) -> None:
        results[r.path] = r
        if on_done:
            on_done(r)

    metas: dict[Path, tuple[str, str]] = {}
    for f in files:
        try:
            m = read_file_meta_info(f)
            metas[f] = (str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID))
        except Exception as exc:
            done(SendResult(f, None, f"cannot read file meta: {exc}"))
    pending = [f for f in files if f in metas]
    while pending:
        # One association per batch of at most 128 distinct (SOP class, transfer syntax) pairs.
        pairs: list[tuple[str, str]] = []
        batch: list[Path] = []
        for f in pending:
            if metas[f] not in pairs:
                if len(pairs) == MAX_CONTEXTS:
                    continue
                pairs.append(metas[f])
            batch.append(f)
        pending = [f for f in pending if f not in set(batch)]
        ae = _new_ae(calling_ae)
        for sop_class, ts in pairs:
            ae.add_requested_context(sop_class, ts)
        attempt = associate(ae, peer)
        if not attempt.established:
            for f in batch:
                done(SendResult(f, None, attempt.failure))
            continue
        assoc = attempt.assoc
        try:
            for f in batch:
                if not assoc.is_established:
                    done(SendResult(f, None, "association lost"))
                    continue
                try:
                    rsp = assoc.send_c_store(f)
                except Exception as exc:   # no accepted context, unreadable file
                    done(SendResult(f, None, str(exc)))
                    continue
                if rsp and "Status" in rsp:
                    status = int(rsp.Status)
                    done(SendResult(f, status, _describe(status)))
                else:
                    done(SendResult(f, None, "no response (timeout or abort)"))
        finally:
            if assoc.is_established:
                assoc.release()


def send_files(peer: Peer, files: list[Path], *, calling_ae: str = "CLARACTL", associations: int = 1,
               on_done: Callable[[SendResult], None] | None = None) -> list[SendResult]:
    """C-STORE `files` over up to `associations` parallel associations; one result per file, in order."""
    results: dict[Path, SendResult] = {}
    n = max(1, min(associations, len(files)))
    chunks = [files[i::n] for i in range(n)]
    lock = threading.Lock()

    def locked_done(r: SendResult) -> None:
        with lock:
            if on_done:
                on_done(r)

    threads = [threading.Thread(target=_send_chunk, args=(peer, calling_ae, c, results, locked_done), daemon=True)
               for c in chunks if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results.get(f, SendResult(f, None, "not sent")) for f in files]
