"""Open groups of received instances, kept on disk so they survive a restart.

Layout: `<dicom_dir>/<called-ae>/<key>.<id8>/` holds `group.json` (who sent it, when) and one
`<SOPInstanceUID>.dcm` per instance. A group closes `timeout` seconds after its last instance;
a group rebuilt after a restart closes `timeout` seconds after the restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pydicom

from claractl.platform.dicom.storage import make_dirs_durable
from claractl.platform.store.payloads import (
    remove_partial_uploads,
    write_file_atomically,
)

log = logging.getLogger("claractl.dicom")

META_FILE = "group.json"
_SAFE = re.compile(r"^[0-9A-Za-z.\-_]{1,64}$")


def safe_name(text: str) -> str:
    """A file-system-safe name: UIDs as they are, anything else hashed (no path tricks)."""
    if _SAFE.match(text) and text not in (".", ".."):
        return text
    return "h" + hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()


@dataclass
class Group:
    id: str
    called_ae: str
    key: str
    dir: Path
    calling_ae: str
    peer: str
    timeout: float
    last: float = field(default_factory=time.monotonic)
    inflight: int = 0
    instances: set[str] = field(default_factory=set)
    patient_id: str = ""
    study_uid: str = ""
    series_uids: set[str] = field(default_factory=set)
    ready: threading.Event = field(default_factory=threading.Event)   # directory + group.json on disk
    broken: bool = False                                              # … or creating them failed

    def note(self, sop_uid: str, patient_id: str, study_uid: str, series_uid: str) -> None:
        self.instances.add(sop_uid)
        self.patient_id = self.patient_id or patient_id
        self.study_uid = self.study_uid or study_uid
        if series_uid:
            self.series_uids.add(series_uid)


class GroupManager:
    """Thread-safe map of (called AE, group key) → open Group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], Group] = {}

    def open_count(self) -> int:
        with self._lock:
            return len(self._groups)

    def acquire(self, called_ae: str, key: str, timeout: float, calling_ae: str, peer: str) -> Group:
        """The open group for this key (created on disk if new), marked as receiving."""
        with self._lock:
            group = self._groups.get((called_ae, key))
            if group is None:
                gid = str(uuid.uuid4())
                gdir = self.root / safe_name(called_ae) / f"{safe_name(key)}.{gid[:8]}"
                group = Group(gid, called_ae, key, gdir, calling_ae, peer, timeout)
                self._groups[(called_ae, key)] = group
                new = True
            else:
                new = False
            group.inflight += 1
            group.timeout = timeout
        if new:
            try:
                make_dirs_durable(group.dir)
                meta = {"id": group.id, "called_ae": called_ae, "key": key, "calling_ae": calling_ae,
                        "peer": peer, "timeout": timeout, "created": datetime.now(timezone.utc).isoformat()}
                write_file_atomically(group.dir / META_FILE, [json.dumps(meta).encode()])
            except BaseException:
                with self._lock:
                    if self._groups.get((called_ae, key)) is group:
                        del self._groups[(called_ae, key)]
                group.broken = True
                group.ready.set()
                self.release(group, None)
                raise
            group.ready.set()
        elif not group.ready.wait(30) or group.broken:
            # The creating thread failed to make the directory.
            self.release(group, None)
            raise OSError(f"group directory {group.dir} could not be created")
        return group

    def release(self, group: Group, instance: tuple[str, str, str, str] | None) -> None:
        """Done receiving one instance (None: nothing was stored)."""
        with self._lock:
            group.inflight -= 1
            if instance is not None:
                group.note(*instance)
                group.last = time.monotonic()

    def take_due(self, now: float | None = None, force: bool = False) -> list[Group]:
        """Remove and return groups idle for their timeout (all idle ones with `force`)."""
        now = time.monotonic() if now is None else now
        due = []
        with self._lock:
            for k, g in list(self._groups.items()):
                if g.inflight == 0 and (force or now - g.last >= g.timeout):
                    due.append(g)
                    del self._groups[k]
        return due

    def requeue(self, group: Group) -> None:
        """Put back a group whose close failed; it is retried after its timeout."""
        with self._lock:
            group.last = time.monotonic()
            key = (group.called_ae, group.key)
            if key in self._groups:
                key = (group.called_ae, group.key + "#" + group.id)
            self._groups[key] = group

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [{"called_ae": g.called_ae, "key": g.key, "instances": len(g.instances),
                     "idle_s": round(time.monotonic() - g.last, 1)} for g in self._groups.values()]

    def rebuild(self) -> list[Group]:
        """Load groups left on disk by a previous run; their timeout restarts now."""
        rebuilt = []
        if not self.root.exists():
            return rebuilt
        for meta_path in sorted(self.root.glob(f"*/*/{META_FILE}")):
            gdir = meta_path.parent
            removed = remove_partial_uploads(gdir)
            try:
                meta = json.loads(meta_path.read_text())
                group = Group(meta["id"], meta["called_ae"], meta["key"], gdir, meta.get("calling_ae", ""),
                              meta.get("peer", ""), float(meta.get("timeout", 5.0)))
            except (OSError, ValueError, KeyError) as exc:
                log.error("DICOM group %s: unreadable %s (%s); left in place", gdir, META_FILE, exc)
                continue
            for f in sorted(gdir.glob("*.dcm")):
                try:
                    ds = pydicom.dcmread(f, stop_before_pixels=True,
                                         specific_tags=["SOPInstanceUID", "PatientID", "StudyInstanceUID",
                                                        "SeriesInstanceUID"])
                    group.note(str(ds.get("SOPInstanceUID", f.stem)), str(ds.get("PatientID", "")),
                               str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")))
                except Exception as exc:  # a file we wrote ourselves; keep it, note it
                    log.warning("DICOM group %s: cannot read header of %s: %s", gdir, f.name, exc)
                    group.instances.add(f.stem)
            group.ready.set()
            with self._lock:
                existing = self._groups.get((group.called_ae, group.key))
                if existing is None:
                    self._groups[(group.called_ae, group.key)] = group
                    rebuilt.append(group)
                else:
                    # Two directories for one key (crash during a close): close them separately.
                    self._groups[(group.called_ae, group.key + "#" + group.id)] = group
                    rebuilt.append(group)
            log.info("DICOM group rebuilt from disk: %s/%s, %d instances (%d partial files removed)",
                     group.called_ae, group.key, len(group.instances), removed)
        return rebuilt

