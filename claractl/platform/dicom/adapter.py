"""The DICOM adapter component: SCP + access control + durable storage + grouping.

    adapter = DicomAdapter(config, store)   # settings in config.dicom
    adapter.start(); adapter.status(); adapter.stop()

`start()` also starts the SCU export agent (`adapter.export_agent`) unless built with
`export_agent=False`. The protocol runs in `scp.StoreSCP`; this class is its handler: it
decides who may associate (store-driven access control, audit line per decision) and hands
each C-STORE to an `incoming.IncomingInstance`, which streams it to disk, checks the header and
publishes it into its group before the response says Success.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
from typing import Any

from pynetdicom.presentation import AllStoragePresentationContexts

from claractl.platform.config import PlatformConfig
from claractl.platform.dicom import audit
from claractl.platform.dicom.access import AccessControl
from claractl.platform.dicom.dataset_check import OUT_OF_RESOURCES, SUCCESS
from claractl.platform.dicom.groups import GroupManager
from claractl.platform.dicom.handoff import close_group
from claractl.platform.dicom.incoming import IncomingInstance
from claractl.platform.dicom.replicas import ADOPTED_DIR, ReplicaKeeper, replica_dir
from claractl.platform.dicom.scp import Association, StoreRequest, StoreSCP
from claractl.platform.dicom.spool import Spool, SpoolWriter
from claractl.platform.dicom.storage import has_room
from claractl.platform.dicom.tls import TlsConfigError, server_context
from claractl.platform.dicom.transfer_syntaxes import STORAGE_TRANSFER_SYNTAXES
from claractl.platform.store import Store

log = logging.getLogger("claractl.dicom")

SPOOL_DIR = ".spool"          # write-ahead segments of instances being received (spool.py)
CHECKPOINT_INTERVAL = 5.0     # seconds between checkpoints that free finished spool segments
# A-ASSOCIATE-RJ while draining: rejected-transient, service-provider (presentation), temporary congestion.
DRAINING = (0x02, 0x03, 0x01)


class DicomAdapter:
    def __init__(self, config: PlatformConfig, store: Store, *, export_agent: bool = True,
                 config_ttl: float = 2.0, close_interval: float = 0.2) -> None:
        self.config = config
        self.settings = config.dicom
        self.store = store
        self.access = AccessControl(store, ttl=config_ttl)
        # resolved once: Path.resolve() per instance is measurable. Receivers sharing the state
        # volume each keep spool and open groups in a directory of their own (replicas.py).
        shared = config.cluster.shared_state
        self.dicom_dir = replica_dir(config.dicom_dir, config.cluster.replica or socket.gethostname()) \
            if shared else config.dicom_dir
        self.keeper = ReplicaKeeper(self.dicom_dir, self._close_adopted) if shared else None
        self._draining = False
        self.groups = GroupManager(self.dicom_dir)
        self.spool = Spool(self.dicom_dir / SPOOL_DIR, config.dicom.spool_segment_mb * 1024 * 1024,
                           room=lambda size: has_room(self.dicom_dir, size, self.settings.watermark_percent,
                                                      self.settings.reserve_mb)[0])
        self._writers: dict[int, SpoolWriter] = {}     # per accepted association
        self._close_interval = close_interval
        self._lock = threading.Lock()
        self._counters = {"instances_received": 0, "bytes_received": 0, "store_failures": 0,
                          "out_of_resources": 0, "associations_accepted": 0, "associations_rejected": 0,
                          "jobs_created": 0}
        self._server = None
        self._tls_server: StoreSCP | None = None
        self._admitted: set[int] = set()     # associations we accepted, until they end
        self._closer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._audit_handler: logging.Handler | None = None
        self.export_agent = None
        if export_agent and not shared:      # shared: one agent runs beside the engine (server.py)
            from claractl.platform.dicom.export import DicomExportAgent
            self.export_agent = DicomExportAgent(config, store, access=self.access)
        self._router = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            self.dicom_dir.mkdir(parents=True, exist_ok=True)
            if self.keeper is not None:
                self.keeper.beat()
            self._audit_handler = audit.attach_file(self.config.logs_dir / "dicom-audit.log")
            self.spool.recover(self.dicom_dir)      # acknowledged instances a crash left in the spool
            self.groups.rebuild()
            self.spool.start()
            server = None
            try:
                server = self._listen(self.settings.port, None)
                if self.settings.tls_port:
                    self._tls_server = self._listen(self.settings.tls_port, server_context(self.settings))
            except (RuntimeError, TlsConfigError):
                if server is not None:
                    server.stop()
                audit.detach(self._audit_handler)
                self._audit_handler = None
                raise
            self._server = server
            self._draining = False
            self._stopping.clear()
            self._closer = threading.Thread(target=self._close_loop, name="dicom-group-closer", daemon=True)
            self._closer.start()
            log.info("DICOM SCP %s listening on %s:%d", self.settings.ae_title, self.settings.host, self.port)
        if self.export_agent is not None:
            self.export_agent.start()

    def _listen(self, port: int, ssl_context) -> StoreSCP:
        # The connection cap is above max_associations so that the association limit is
        # answered with a proper A-ASSOCIATE-RJ (see on_associate), not a closed socket.
        server = StoreSCP(self, self.settings.host, port,
                          storage_sop_classes=[str(cx.abstract_syntax) for cx in AllStoragePresentationContexts],
                          transfer_syntaxes=STORAGE_TRANSFER_SYNTAXES,
                          max_connections=self.settings.max_associations + 100,
                          network_timeout=self.settings.network_timeout, ssl_context=ssl_context)
        try:
            server.start()
        except OSError as exc:
            raise RuntimeError(f"DICOM SCP cannot listen on {self.settings.host}:{port}"
                               f"{' (TLS)' if ssl_context else ''}: {exc.strerror or exc}") from exc
        if ssl_context is not None:
            log.info("DICOM SCP listening for TLS on %s:%d", self.settings.host, server.port)
        return server

    @property
    def tls_port(self) -> int | None:
        """The TLS listener's bound port (None without one)."""
        return self._tls_server.port if self._tls_server is not None else None

    @property
    def port(self) -> int:
        """The bound port (useful when configured as 0)."""
        if self._server is None:
            return self.settings.port
        return self._server.port

    def stop(self) -> None:
        if self.export_agent is not None:
            self.export_agent.stop()
        if self.settings.drain_seconds > 0 and self._server is not None:
            self._drain(self.settings.drain_seconds)
        with self._lock:
            server, self._server = self._server, None
            tls_server, self._tls_server = self._tls_server, None
        if server is None:
            return
        if tls_server is not None:
            tls_server.stop()
        # Not under self._lock: the connection and closer threads take it on their way out.
        server.stop()
        self._stopping.set()
        if self._closer is not None:
            self._closer.join(timeout=30)
        if self._audit_handler is not None:
            audit.detach(self._audit_handler)
            self._audit_handler = None
        self.spool.stop()
        self._checkpoint()
        # Open groups stay on disk; the next start rebuilds them (and replays what is left in the
        # spool) — unless this receiver is one of several: nobody may start with its directory.
        if self.keeper is not None:
            self._hand_over()

    def _drain(self, timeout: float) -> None:
        """Refuse new associations (A-ASSOCIATE-RJ, transient: the sender retries elsewhere) and
        give the accepted ones up to `timeout` s to finish; what is left is then aborted."""
        with self._lock:
            self._draining = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = len(self._admitted)
            if not busy:
                log.info("DICOM SCP drained: no association in flight")
                return
            time.sleep(0.1)
        with self._lock:
            busy = len(self._admitted)
        log.warning("DICOM SCP: %d association(s) still in flight after draining %.0f s; aborting them", busy, timeout)

    def _hand_over(self) -> None:
        """Close every open group into its jobs and remove this receiver's directory; a group that
        cannot be closed now stays, and the directory is adopted by a live receiver later."""
        self.close_due(force=True)
        claimed = self.dicom_dir / ADOPTED_DIR
        if self.groups.open_count() or (claimed.is_dir() and any(claimed.iterdir())):
            log.warning("DICOM replica directory %s kept (%d open group(s)); another receiver adopts it",
                        self.dicom_dir, self.groups.open_count())
            return
        shutil.rmtree(self.dicom_dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        server = self._server
        connections = server.connections_open if server is not None else 0
        with self._lock:
            counters = dict(self._counters)
            admitted = len(self._admitted)
        out = {"running": server is not None, "ready": server is not None and not self._draining,
               "draining": self._draining, "ae_title": self.settings.ae_title,
               "port": self.port, "tls_port": self.tls_port, "associations_active": admitted, "connections_open": connections,
               "max_associations": self.settings.max_associations, "groups_open": self.groups.open_count(),
               "groups": self.groups.snapshot(), **counters,
               "rejects": counters["associations_rejected"] + counters["store_failures"]
               + counters["out_of_resources"]}
        if self.export_agent is not None:
            out["export"] = self.export_agent.status()
        if self.keeper is not None:
            out["replica_dir"] = str(self.dicom_dir)
            out["adopted_dirs"] = self.keeper.adopted
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

    # ----------------------------------------------------------------- SCP handler
    def on_associate(self, assoc: Association) -> tuple[tuple[int, int, int] | None, str]:
        try:
            rj, reason = self.access.check(assoc.calling_ae, assoc.called_ae, assoc.peer_host,
                                           self.settings.reject_unknown_sources)
        except Exception as exc:   # store unavailable: refuse rather than accept blindly
            log.error("DICOM access check failed: %s", exc)
            rj, reason = (0x02, 0x01, 0x01), "platform store unavailable"
        with self._lock:
            if rj is None and self._draining:
                rj, reason = DRAINING, "the receiver is shutting down"
            if rj is None:
                if len(self._admitted) >= self.settings.max_associations:
                    rj, reason = (0x02, 0x03, 0x02), "maximum associations reached"
                else:
                    self._admitted.add(id(assoc))
            self._counters["associations_rejected" if rj else "associations_accepted"] += 1
        audit.association(self.store, rj is None, assoc.peer, assoc.calling_ae, assoc.called_ae, reason, assoc.tls)
        return rj, reason

    def on_malformed_request(self, peer: str, reason: str) -> None:
        self._count("associations_rejected")
        audit.association(self.store, False, peer, "", "", reason)

    def on_closed(self, assoc: Association) -> None:
        with self._lock:
            self._admitted.discard(id(assoc))
            writer = self._writers.pop(id(assoc), None)
        if writer is not None:
            writer.close()

    def begin_store(self, assoc: Association, request: StoreRequest) -> IncomingInstance:
        with self._lock:
            writer = self._writers.get(id(assoc))
            if writer is None:
                writer = self._writers[id(assoc)] = self.spool.writer()
        return IncomingInstance(root=self.dicom_dir, groups=self.groups, settings=self.settings,
                                spool=writer, ae=self.access.ae(assoc.called_ae), assoc=assoc, request=request,
                                on_done=self._stored)

    def _stored(self, status: int, nbytes: int) -> None:
        with self._lock:
            if status == SUCCESS:
                self._counters["instances_received"] += 1
                self._counters["bytes_received"] += nbytes
            elif status == OUT_OF_RESOURCES:
                self._counters["out_of_resources"] += 1
            else:
                self._counters["store_failures"] += 1

    # ----------------------------------------------------------------- group closing
    def _close_loop(self) -> None:
        last_checkpoint = time.monotonic()
        while not self._stopping.wait(self._close_interval):
            self.close_due()
            if self.keeper is not None:
                self.keeper.tick()
            if self.spool.retired_segments() and time.monotonic() - last_checkpoint > CHECKPOINT_INTERVAL:
                self._checkpoint()
                last_checkpoint = time.monotonic()

    def _checkpoint(self) -> bool:
        try:
            self.spool.checkpoint(self.dicom_dir)
            return True
        except OSError as exc:
            log.error("DICOM spool checkpoint failed (segments kept): %s", exc)
            return False

    def _close_adopted(self, group) -> list[str]:
        """Close a group of a receiver that is gone (replicas.py); raises to keep it for later."""
        self.access.invalidate()
        ids = close_group(self.config, self.store, group, self.access.ae(group.called_ae))
        self._count("jobs_created", len(ids))
        return ids

    def close_due(self, force: bool = False) -> list[str]:
        """Close every group whose timeout passed (all idle ones with `force`); return job ids."""
        job_ids: list[str] = []
        due = self.groups.take_due(force=force)
        if due and not self._checkpoint():     # a group's files must be durable before a job uses them
            for group in due:
                self.groups.requeue(group)
            return job_ids
        for group in due:
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
