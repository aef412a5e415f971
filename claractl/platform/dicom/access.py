"""Who may talk to the SCP: AE titles, sources and destinations read from the store.

Read again at most every `ttl` seconds, so API changes take effect without a restart.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from claractl.platform.store import Store
from claractl.platform.store.models import AETitle, Destination, Source

# A-ASSOCIATE-RJ (result, source, reason) triples, PS3.8 9.3.4.
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_NO_REASON = (0x01, 0x01, 0x01)


@dataclass(frozen=True)
class AEConfig:
    ae_title: str
    pipelines: tuple[str, ...]
    group_by: int          # tag as int, e.g. 0x0020000D
    timeout: float
    priority: str


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    ae_title: str
    host: str
    port: int
    tls: bool = False


@dataclass
class Snapshot:
    ae_titles: dict[str, AEConfig] = field(default_factory=dict)
    sources: list[tuple[str, str]] = field(default_factory=list)   # (calling AE, host)
    destinations: dict[str, DestinationConfig] = field(default_factory=dict)


def parse_tag(text: str) -> int:
    """'0020,000D' / '(0020,000D)' / '0020000D' → 0x0020000D."""
    t = text.strip().strip("()").replace(",", "").replace(" ", "")
    if len(t) != 8:
        raise ValueError(f"group-by tag {text!r} is not of the form GGGG,EEEE")
    return int(t, 16)


def _addresses(host: str) -> set[str]:
    """IP addresses a configured host name stands for (itself if it does not resolve)."""
    out = {host}
    try:
        for info in socket.getaddrinfo(host, None):
            out.add(str(info[4][0]))
    except OSError:
        pass
    if host in ("localhost",) or "127.0.0.1" in out:
        out.update({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
    return out


class AccessControl:
    def __init__(self, store: Store, ttl: float = 2.0) -> None:
        self._store = store
        self._ttl = ttl
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self._loaded_at = float("-inf")
        self._host_cache: dict[str, set[str]] = {}

    def snapshot(self) -> Snapshot:
        with self._lock:
            if time.monotonic() - self._loaded_at > self._ttl:
                self._snapshot = self._load()
                self._loaded_at = time.monotonic()
                self._host_cache.clear()
            return self._snapshot

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def _load(self) -> Snapshot:
        snap = Snapshot()
        with self._store.session() as s:
            for row in s.scalars(select(AETitle)):
                try:
                    tag = parse_tag(row.group_by or "0020,000D")
                except ValueError:
                    tag = 0x0020000D
                snap.ae_titles[row.ae_title.strip()] = AEConfig(
                    row.ae_title.strip(), tuple(row.pipelines or ()), tag, float(row.timeout), row.priority
                )
            snap.sources = [(r.ae_title.strip(), r.host) for r in s.scalars(select(Source))]
            for r in s.scalars(select(Destination)):
                snap.destinations[r.name] = DestinationConfig(r.name, r.ae_title.strip(), r.host, int(r.port),
                                                              bool(r.tls))
        return snap

    def ae(self, called: str) -> AEConfig | None:
        return self.snapshot().ae_titles.get(called.strip())

    def destination(self, name: str) -> DestinationConfig | None:
        return self.snapshot().destinations.get(name)

    def check(self, calling: str, called: str, peer_host: str, reject_unknown_sources: bool
              ) -> tuple[tuple[int, int, int] | None, str]:
        """(None, "") to accept, else (A-ASSOCIATE-RJ triple, reason text)."""
        snap = self.snapshot()
        if called.strip() not in snap.ae_titles:
            return REJECT_CALLED_AE, "called AE not recognised"
        if reject_unknown_sources:
            for ae_title, host in snap.sources:
                if ae_title == calling.strip() and peer_host in self._resolve(host):
                    break
            else:
                return REJECT_CALLING_AE, "calling AE not recognised (AE title + host not in sources)"
        return None, ""

    def _resolve(self, host: str) -> set[str]:
        with self._lock:
            cached = self._host_cache.get(host)
        if cached is None:
            cached = _addresses(host)
            with self._lock:
                self._host_cache[host] = cached
        return cached
