"""The DICOM adapter component: pynetdicom SCP + access control + durable storage + grouping.

    adapter = DicomAdapter(config, store)   # settings in config.dicom
    adapter.start(); adapter.status(); adapter.stop()

`start()` also starts the SCU export agent (`adapter.export_agent`) unless built with
`export_agent=False`. Receive path per instance: access already checked at association →
free-space check (0xA700, nothing written) → header parse without touching pixel data
(0xC210 on failure) → raw encoded bytes + file meta written to a temp file, fsynced, renamed,
directory fsynced → 0x0000.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.sop_class import Verification

from claractl.platform.config import PlatformConfig
from claractl.platform.dicom import audit
from claractl.platform.dicom.access import AccessControl
from claractl.platform.dicom.file_meta import encode_part10_header
from claractl.platform.dicom.groups import GroupManager, safe_name
from claractl.platform.dicom.handoff import close_group
from claractl.platform.dicom.netutil import NODELAY_HANDLER
from claractl.platform.dicom.storage import has_room, write_durable
from claractl.platform.dicom.transfer_syntaxes import STORAGE_TRANSFER_SYNTAXES
from claractl.platform.store import Store

log = logging.getLogger("claractl.dicom")

# C-STORE statuses (PS3.4 B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC210
PROCESSING_FAILURE = 0x0110


def _peer(assoc) -> str:
    return f"{assoc.requestor.address}:{assoc.requestor.port}"


def _check_complete(ds: Dataset, stream_len: int) -> None:
    """pydicom stops quietly at the end of a short stream; the last element must fit in it."""
    if not len(ds):
        raise ValueError("empty dataset")
    last = ds.get_item(max(ds.keys()))
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is not None and length not in (None, 0xFFFFFFFF) and tell + length > stream_len:
        raise ValueError(f"dataset truncated in element {last.tag} ({tell + length - stream_len} bytes missing)")


def _validate(ds: Dataset) -> None:
    """Decode every element (VRs, lengths, sequences) except pixel data; raises on bad input."""
    def touch(_ds, elem):
        if elem.tag != 0x7FE00010:
            _ = elem.value
    ds.walk(touch)


def _mismatch(ds: Dataset, request) -> str:
    """Why the dataset does not match its C-STORE request ('' when it does)."""
    if str(ds.get("SOPClassUID", "")) != str(request.AffectedSOPClassUID):
        return "SOP Class UID missing or not the one in the request"
    if str(ds.get("SOPInstanceUID", "")) != str(request.AffectedSOPInstanceUID):
        return "SOP Instance UID missing or not the one in the request"
    return ""


class DicomAdapter:
    def __init__(self, config: PlatformConfig, store: Store, *, export_agent: bool = True,
                 config_ttl: float = 2.0, close_interval: float = 0.2) -> None:
        self.config = config
        self.settings = config.dicom
        self.store = store
        self.access = AccessControl(store, ttl=config_ttl)
        self.groups = GroupManager(config.dicom_dir)
        self._close_interval = close_interval
        self._lock = threading.Lock()
        self._counters = {"instances_received": 0, "bytes_received": 0, "store_failures": 0,
                          "out_of_resources": 0, "associations_accepted": 0, "associations_rejected": 0,
                          "jobs_created": 0}
        self._server = None
        self._admitted: set[int] = set()     # associations we let through, until their socket closes
        self._closer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._audit_handler: logging.Handler | None = None
        self.export_agent = None
        if export_agent:
            from claractl.platform.dicom.export import DicomExportAgent
            self.export_agent = DicomExportAgent(config, store, access=self.access)
        self._router = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            self.config.dicom_dir.mkdir(parents=True, exist_ok=True)
            self._audit_handler = audit.attach_file(self.config.logs_dir / "dicom-audit.log")
            self.groups.rebuild()
            ae = AE(ae_title=self.settings.ae_title)
            # pynetdicom counts connections still waiting for their A-ASSOCIATE-RQ, so a few idle
            # sockets could lock everyone out until acse_timeout; we count admitted ones ourselves
            # (see _on_requested) and leave pynetdicom a higher hard cap on threads.
            ae.maximum_associations = self.settings.max_associations + 100
            ae.maximum_pdu_size = 0          # unlimited: fewer, larger P-DATA from peers that honour it
            ae.require_called_aet = False    # we check called AE ourselves against the store
            ae.acse_timeout = 30
            ae.dimse_timeout = 60
            ae.network_timeout = 60
            for cx in StoragePresentationContexts:
                ae.add_supported_context(cx.abstract_syntax, STORAGE_TRANSFER_SYNTAXES)
            ae.add_supported_context(Verification)
            handlers = [
                NODELAY_HANDLER,
                (evt.EVT_REQUESTED, self._on_requested),
                (evt.EVT_ACCEPTED, self._on_accepted),
                (evt.EVT_REJECTED, self._on_rejected),
                (evt.EVT_CONN_CLOSE, self._on_closed),
                (evt.EVT_C_ECHO, lambda event: SUCCESS),
                (evt.EVT_C_STORE, self._on_store),
            ]
            self._ae = ae
            try:
                self._server = ae.start_server((self.settings.host, self.settings.port), block=False,
                                               evt_handlers=handlers)
            except OSError as exc:
                audit.detach(self._audit_handler)
                self._audit_handler = None
                raise RuntimeError(f"DICOM SCP cannot listen on {self.settings.host}:{self.settings.port}: "
                                   f"{exc.strerror or exc}") from exc
            self._stopping.clear()
            self._closer = threading.Thread(target=self._close_loop, name="dicom-group-closer", daemon=True)
            self._closer.start()
            log.info("DICOM SCP %s listening on %s:%d", self.settings.ae_title, self.settings.host, self.port)
        if self.export_agent is not None:
            self.export_agent.start()

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._server is None:
            return self.settings.port
        return self._server.server_address[1]

    def stop(self) -> None:
        if self.export_agent is not None:
            self.export_agent.stop()
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.shutdown()
            self._stopping.set()
            if self._closer is not None:
                self._closer.join(timeout=30)
            if self._audit_handler is not None:
                audit.detach(self._audit_handler)
                self._audit_handler = None
        # Open groups stay on disk; the next start rebuilds them.

    def status(self) -> dict[str, Any]:
        server = self._server
        connections = len(server.active_associations) if server is not None else 0
        with self._lock:
            counters = dict(self._counters)
            admitted = len(self._admitted)
        out = {"running": server is not None, "ready": server is not None, "ae_title": self.settings.ae_title,
               "port": self.port, "associations_active": admitted, "connections_open": connections,
               "max_associations": self.settings.max_associations, "groups_open": self.groups.open_count(),
               "groups": self.groups.snapshot(), **counters,
               "rejects": counters["associations_rejected"] + counters["store_failures"]
               + counters["out_of_resources"]}
        if self.export_agent is not None:
            out["export"] = self.export_agent.status()
        return out

    @property
    def router(self):
        """FastAPI router with GET /dicom/status (the platform API mounts it under /api/v1)."""
        if self._router is None:
            from fastapi import APIRouter
            router = APIRouter(tags=["dicom"])
            router.add_api_route("/dicom/status", lambda: self.status(), methods=["GET"])
            self._router = router
        return self._router

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counters[key] += n

    # ----------------------------------------------------------------- association events
    def _on_requested(self, event) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        calling, called = str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip()
        try:
            rj, reason = self.access.check(calling, called, assoc.requestor.address,
                                           self.settings.reject_unknown_sources)
        except Exception as exc:   # store unavailable: refuse rather than accept blindly
            log.error("DICOM access check failed: %s", exc)
            rj, reason = (0x02, 0x01, 0x01), "platform store unavailable"
        if rj is None:
            with self._lock:
                if len(self._admitted) >= self.settings.max_associations:
                    rj, reason = (0x02, 0x03, 0x02), "maximum associations reached"
                else:
                    self._admitted.add(id(assoc))
        if rj is not None:
            assoc.acse.send_reject(*rj)
            self._count("associations_rejected")
            audit.line("REJECT", _peer(assoc), calling, called, reason)
            # Let the DUL flush the A-ASSOCIATE-RJ before the server closes the socket.
            deadline = time.monotonic() + 2
            while not assoc.dul.to_provider_queue.empty() and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.01)
            return
        assoc.acceptor.ae_title = called     # answer as the AE the peer called

    def _on_closed(self, event) -> None:
        with self._lock:
            self._admitted.discard(id(event.assoc))

    def _on_accepted(self, event) -> None:
        assoc = event.assoc
        self._count("associations_accepted")
        audit.line("ACCEPT", _peer(assoc), str(assoc.requestor.ae_title).strip(),
                   str(assoc.acceptor.ae_title).strip())

    def _on_rejected(self, event) -> None:
        # pynetdicom's own rejections (max associations reached).
        assoc = event.assoc
        rq = assoc.requestor.primitive
        self._count("associations_rejected")
        audit.line("REJECT", _peer(assoc), str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip(),
                   "maximum associations reached")

    # ----------------------------------------------------------------- C-STORE
    def _on_store(self, event) -> int | tuple[int, Dataset]:
        assoc = event.assoc
        called = str(assoc.acceptor.ae_title).strip()
        calling = str(assoc.requestor.ae_title).strip()
        ae_cfg = self.access.ae(called)
        if ae_cfg is None:
            self._count("store_failures")
            log.warning("C-STORE from %s: AE %s no longer configured", _peer(assoc), called)
            return PROCESSING_FAILURE
        try:
            stream = event.encoded_dataset(include_meta=False)
            sop_uid = str(event.request.AffectedSOPInstanceUID)
        except Exception as exc:
            return self._fail(assoc, CANNOT_UNDERSTAND, f"cannot read request: {exc}")
        ok, why = has_room(self.config.dicom_dir, len(stream) + 1024,
                           self.settings.watermark_percent, self.settings.reserve_mb)
        if not ok:
            self._count("out_of_resources")
            log.warning("C-STORE %s from %s refused, out of resources: %s", sop_uid, _peer(assoc), why)
            return OUT_OF_RESOURCES
        try:
            ds = event.dataset
            if not event.context.transfer_syntax.is_deflated:
                _check_complete(ds, len(stream))
            _validate(ds)
            mismatch = _mismatch(ds, event.request)
            key_elem = ds.get(ae_cfg.group_by)
            key = str(key_elem.value).strip() if key_elem is not None and key_elem.value else ""
            info = (sop_uid, str(ds.get("PatientID", "") or ""), str(ds.get("StudyInstanceUID", "") or ""),
                    str(ds.get("SeriesInstanceUID", "") or ""))
            header = encode_part10_header(str(event.request.AffectedSOPClassUID), sop_uid,
                                          str(event.context.transfer_syntax), calling)
        except Exception as exc:
            return self._fail(assoc, CANNOT_UNDERSTAND, f"dataset {sop_uid} cannot be parsed: {exc}")
        if mismatch:
            return self._fail(assoc, DATASET_MISMATCH, f"dataset {sop_uid}: {mismatch}")
        if not key:
            return self._fail(assoc, DATASET_MISMATCH,
                              f"dataset {sop_uid} has no group-by tag {ae_cfg.group_by:08X}")
        try:
            group = self.groups.acquire(called, key, ae_cfg.timeout, calling, _peer(assoc))
        except OSError as exc:
            return self._fail(assoc, OUT_OF_RESOURCES, f"cannot create group directory: {exc}")
        stored = None
        try:
            path = group.dir / f"{safe_name(sop_uid)}.dcm"
            if not self.settings.overwrite_duplicates and path.exists():
                log.info("C-STORE %s duplicate kept (overwrite_duplicates off)", sop_uid)
            else:
                write_durable(path, (header, stream))
            stored = info
        except OSError as exc:
            return self._fail(assoc, OUT_OF_RESOURCES, f"cannot write {sop_uid}: {exc}")
        finally:
            self.groups.release(group, stored)
        with self._lock:
            self._counters["instances_received"] += 1
            self._counters["bytes_received"] += len(stream)
        return SUCCESS

    def _fail(self, assoc, status: int, message: str) -> int:
        self._count("store_failures")
        log.warning("C-STORE from %s (%s): 0x%04X %s", _peer(assoc), str(assoc.requestor.ae_title).strip(),
                    status, message)
        return status

    # ----------------------------------------------------------------- group closing
    def _close_loop(self) -> None:
        while not self._stopping.wait(self._close_interval):
            self.close_due()

    def close_due(self, force: bool = False) -> list[str]:
        """Close every group whose timeout passed (all idle ones with `force`); return job ids."""
        job_ids: list[str] = []
        for group in self.groups.take_due(force=force):
            try:
                self.access.invalidate()
                ids = close_group(self.config, self.store, group, self.access.ae(group.called_ae))
                job_ids.extend(ids)
                self._count("jobs_created", len(ids))
            except Exception as exc:
                # Keep the group (still on disk); try again after its timeout.
                log.error("DICOM group %s/%s: closing failed, will retry: %s", group.called_ae, group.key, exc)
                self.groups.requeue(group)
        return job_ids
