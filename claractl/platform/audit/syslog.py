"""Sending the audit trail to a hospital's audit repository: DICOM audit messages (atna.py) in
RFC 5424 syslog messages, over TCP (RFC 6587 octet counting) or TLS (RFC 5425).

    forwarder = SyslogForwarder(config, store)     # config.audit.syslog = "tls://host:6514"
    forwarder.start(); forwarder.status(); forwarder.stop()

A platform component: it follows the trail in the store (by event id) and sends what is new,
in order. While the repository is down it waits and retries (1 s … 60 s); nothing is skipped, and
where it got to is kept in `<state-dir>/logs/audit-syslog.cursor`, so a restart resumes there.
A first start begins with the events recorded from then on (an existing trail is not replayed).
"""

from __future__ import annotations

import logging
import os
import select as io_select      # sqlalchemy's select is the query builder here
import socket
import ssl
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from claractl.platform.audit.atna import message
from claractl.platform.audit.query import list_events
from claractl.platform.config import PlatformConfig
from claractl.platform.store import Store
from claractl.platform.store.models import AuditEvent

log = logging.getLogger("claractl.audit")
FACILITY_AUTHPRIV, SEVERITY_NOTICE = 10, 5        # what ATNA repositories expect (RFC 5424 / IHE ITI-20)
APP_NAME, MSG_ID = "claractl", "DICOM+RFC3881"
BATCH = 200
BOM = "\ufeff"


class SyslogConfigError(ValueError):
    """The audit.syslog setting cannot be used; the message says why."""


def parse_target(url: str) -> tuple[str, str, int]:
    """"tcp://host:514" or "tls://host:6514" → (transport, host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or not parts.port:
        raise SyslogConfigError(f"audit syslog {url!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    return parts.scheme, parts.hostname, parts.port


def frame(xml: str, at: str, hostname: str) -> bytes:
    """One RFC 5424 message (PRI, version 1, timestamp, host, app, proc id, msg id, no structured
    data, UTF-8 message with BOM), octet-counted as RFC 6587/5425 frame it."""
    header = (f"<{FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE}>1 {at} {hostname or '-'} {APP_NAME} {os.getpid()} "
              f"{MSG_ID} - ")
    body = (header + BOM + xml).encode("utf-8")
    return f"{len(body)} ".encode() + body


class SyslogForwarder:
    def __init__(self, config: PlatformConfig, store: Store, *, poll_interval: float = 1.0) -> None:
        self.config = config
        self.settings = config.audit
        self.store = store
        self.transport, self.host, self.port = parse_target(self.settings.syslog)
        self.poll_interval = poll_interval
        self.hostname = socket.gethostname()
        self.source_id = self.settings.source_id or f"claractl@{self.hostname}"
        self.cursor_file = config.logs_dir / "audit-syslog.cursor"
        self._context = self._tls_context() if self.transport == "tls" else None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats = {"sent": 0, "failures": 0, "last_error": None, "cursor": None}

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        try:
            ctx = ssl.create_default_context(cafile=s.syslog_ca_certificates or None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if s.syslog_certificate and s.syslog_private_key:
                ctx.load_cert_chain(s.syslog_certificate, s.syslog_private_key)
        except (OSError, ssl.SSLError) as exc:
            raise SyslogConfigError(f"audit syslog TLS: {getattr(exc, 'strerror', None) or exc}") from None
        return ctx

    # ------------------------------------------------------------------ component
    def start(self) -> None:
        self.config.logs_dir.mkdir(parents=True, exist_ok=True)
        self._stats["cursor"] = self._load_cursor()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-syslog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._disconnect()

    def status(self) -> dict[str, Any]:
        return {"running": self._thread is not None and self._thread.is_alive(),
                "ready": self._thread is not None, "target": f"{self.transport}://{self.host}:{self.port}",
                **self._stats}

    # ------------------------------------------------------------------ cursor
    def _load_cursor(self) -> int:
        try:
            return int(self.cursor_file.read_text().strip())
        except (OSError, ValueError):
            with self.store.session() as s:       # first start: from now on
                return int(s.scalar(select(func.max(AuditEvent.id))) or 0)

    def _save_cursor(self, cursor: int) -> None:
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(str(cursor))
        os.replace(tmp, self.cursor_file)
        self._stats["cursor"] = cursor

    # ------------------------------------------------------------------ sending
    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                sent = self.send_pending()
                delay = 1.0
                if not sent:
                    self._stop.wait(self.poll_interval)
            except (OSError, ssl.SSLError) as exc:
                self._disconnect()
                self._stats["failures"] += 1
                if self._stats["last_error"] != str(exc):
                    log.warning("audit syslog %s://%s:%d: %s; retrying", self.transport, self.host, self.port, exc)
                self._stats["last_error"] = str(exc)
                self._stop.wait(delay)
                delay = min(60.0, delay * 2)
            except Exception as exc:         # the store away: try again later
                log.warning("audit syslog: cannot read the trail: %s", exc)
                self._stop.wait(5)

    def send_pending(self) -> int:
        """Send the next events after the cursor (a batch); the number sent."""
        cursor = self._stats["cursor"]
        with self.store.session() as s:
            events = list_events(s, after_id=cursor, limit=BATCH)
        if not events:
            return 0
        sock = self._connect()
        for event in events:
            xml = message(event, ae_title=self.config.dicom.ae_title, source_id=self.source_id,
                          site_id=self.settings.site_id)
            if xml is not None:
                sock.sendall(frame(xml, _rfc3339(event["at"]), self.hostname))
                self._stats["sent"] += 1
            self._save_cursor(event["id"])
        self._stats["last_error"] = None
        return len(events)

    def _connect(self) -> socket.socket:
        if self._sock is not None and _closed_by_peer(self._sock):
            self._disconnect()           # a restarted repository: do not write into a dead connection
        if self._sock is None:
            raw = socket.create_connection((self.host, self.port), timeout=30)
            self._sock = self._context.wrap_socket(raw, server_hostname=self.host) if self._context else raw
        return self._sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None


def _closed_by_peer(sock: socket.socket) -> bool:
    """The repository closed the connection (syslog receivers send nothing back, so anything
    readable is the end of the stream)."""
    readable, _, _ = io_select.select([sock], [], [], 0)
    if not readable:
        return False
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        # TLS cannot peek (a record must be decrypted): read — there is nothing to lose.
        data = sock.recv(1) if isinstance(sock, ssl.SSLSocket) else sock.recv(1, socket.MSG_PEEK)
        return data == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:                      # ssl.SSLError included: reset, or TLS alert
        return True
    finally:
        sock.settimeout(timeout)


def _rfc3339(at: str) -> str:
    """The event time as RFC 5424 wants it: UTC, milliseconds, "Z"."""
    t = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


__all__ = ["SyslogForwarder", "SyslogConfigError", "frame", "parse_target"]
