"""Several DICOM receivers sharing one state volume (high availability on kubernetes).

Each receiver keeps its spool and open groups in a directory of its own,
`<dicom_dir>/replicas/<replica>/` (the pod's name), on the shared volume, so the receive path
needs no lock between replicas and keeps the single-process layout and recovery (spool.py,
groups.py). What happens to a replica's directory:

- **Clean stop** (an apply rolls the pod, a pod is deleted): the receiver drains (adapter.py),
  closes every open group into its jobs, and removes its directory.
- **Crash, container restart**: the restarted process has the same pod name and recovers its
  own directory at start, as a single platform does.
- **Crash, pod gone** (OOM-killed pod replaced, node lost, force-deleted): the directory's
  heartbeat file (`.alive`, touched every HEARTBEAT s) goes stale; after STALE_AFTER s any live
  receiver *adopts* it: claims it by renaming it into its own `.adopted/` (a rename is atomic:
  one adopter wins), replays its spool, closes its groups into jobs, and deletes it. A receiver
  that dies while adopting leaves the claimed directory inside its own, adopted in turn.

Clocks: staleness compares the heartbeat's mtime with this host's clock; keep node clocks within
a few seconds of each other (NTP), well inside STALE_AFTER.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from claractl.platform.dicom.groups import GroupManager, safe_name
from claractl.platform.dicom.spool import Spool

log = logging.getLogger("claractl.dicom")

REPLICAS_DIR = "replicas"
HEARTBEAT_FILE = ".alive"
ADOPTED_DIR = ".adopted"
SPOOL_DIR = ".spool"
HEARTBEAT = 5.0            # seconds between touches of the heartbeat file
STALE_AFTER = 60.0         # seconds without a touch before a directory is adopted
SCAN_EVERY = 15.0          # seconds between looks for stale siblings


def replica_dir(dicom_dir: Path, replica: str) -> Path:
    return dicom_dir / REPLICAS_DIR / safe_name(replica)


# close(group) → job ids; raises when the group cannot be closed now (kept, tried again later)
CloseGroup = Callable[[object], list[str]]


class ReplicaKeeper:
    """This receiver's heartbeat, and adoption of the directories of receivers that are gone."""

    def __init__(self, own: Path, close: CloseGroup, stale_after: float = STALE_AFTER,
                 heartbeat: float = HEARTBEAT, scan_every: float = SCAN_EVERY) -> None:
        self.own = own
        self.siblings = own.parent
        self.close = close
        self.stale_after, self.heartbeat_every, self.scan_every = stale_after, heartbeat, scan_every
        self._beat = self._scanned = 0.0
        self.adopted = 0                  # directories taken over and emptied

    def tick(self, now: float | None = None) -> None:
        """Called often (the adapter's group-closing loop): beat, and now and then adopt."""
        now = time.monotonic() if now is None else now
        if now - self._beat >= self.heartbeat_every:
            self._beat = now
            self.beat()
        if now - self._scanned >= self.scan_every:
            self._scanned = now
            self.adopt_stale()

    def beat(self) -> None:
        try:
            (self.own / HEARTBEAT_FILE).touch()
        except OSError as exc:
            log.error("DICOM replica heartbeat %s: %s", self.own / HEARTBEAT_FILE, exc)

    def stale(self) -> list[Path]:
        """Sibling directories whose heartbeat is older than STALE_AFTER (or missing and old)."""
        found = []
        if not self.siblings.is_dir():
            return found
        now = time.time()
        for d in self.siblings.iterdir():
            if d == self.own or not d.is_dir():
                continue
            beat = d / HEARTBEAT_FILE
            try:
                seen = (beat if beat.exists() else d).stat().st_mtime
            except FileNotFoundError:
                continue                   # adopted by someone else meanwhile
            if now - seen > self.stale_after:
                found.append(d)
        return found

    def adopt_stale(self) -> int:
        """Claim every stale sibling, then finish what this receiver claimed (also earlier)."""
        for d in self.stale():
            target = self.own / ADOPTED_DIR / d.name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(d, target)
            except FileNotFoundError:
                continue                   # another receiver claimed it first
            except OSError as exc:
                log.error("DICOM replica %s: cannot claim %s: %s", self.own.name, d, exc)
                continue
            log.warning("DICOM replica %s adopts %s (no heartbeat for over %.0f s)", self.own.name, d.name,
                        self.stale_after)
        done = 0
        claimed = self.own / ADOPTED_DIR
        for d in sorted(claimed.iterdir()) if claimed.is_dir() else []:
            if finish_directory(d, self.close):
                done += 1
        self.adopted += done
        return done


def finish_directory(root: Path, close: CloseGroup) -> bool:
    """Replay a receiver directory's spool, close all its groups, delete it; False (kept, tried
    again at the next scan) when a group could not be closed."""
    nested = root / ADOPTED_DIR
    ok = all([finish_directory(d, close) for d in sorted(nested.iterdir())]) if nested.is_dir() else True
    spool = root / SPOOL_DIR
    if spool.is_dir():
        Spool(spool).recover(root)           # acknowledged instances not yet in their group directory
        shutil.rmtree(spool, ignore_errors=True)
    jobs = 0
    for group in GroupManager(root).rebuild():
        try:
            jobs += len(close(group))
        except Exception as exc:  # noqa: BLE001 — store down, …: the group stays, tried again later
            log.error("DICOM group %s/%s of %s: closing failed, will retry: %s", group.called_ae, group.key,
                      root.name, exc)
            ok = False
    if ok:
        shutil.rmtree(root, ignore_errors=True)
        log.info("DICOM replica directory %s finished: %d job(s) created", root.name, jobs)
    return ok


__all__ = ["ReplicaKeeper", "finish_directory", "replica_dir", "REPLICAS_DIR"]
