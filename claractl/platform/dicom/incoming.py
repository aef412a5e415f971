"""One C-STORE dataset on its way in: staged to disk as it arrives, checked, published into its group.

The SCP calls `write` per received fragment, `finish` after the last one (its status is what
the C-STORE response says) and `settle` once the response is sent:
    free space (0xA700) → fragments appended to the association's spool segment as they arrive →
    header checked, pixel data untouched (0xC210 / 0xA900) → spool record committed (one
    fdatasync) → 0x0000 → settle: the file queued for its group directory, no sync (the spool
    keeps the durable copy until the next checkpoint; see spool.py).
Nothing is published unless the status is Success; a refused record is never committed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from claractl.platform.config import DicomSettings
from claractl.platform.dicom.access import AEConfig
from claractl.platform.dicom.dataset_check import (
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SUCCESS,
    Refused,
    check_dataset,
)
from claractl.platform.dicom.file_meta import encode_part10_header
from claractl.platform.dicom.groups import Group, GroupManager, safe_name
from claractl.platform.dicom.scp import Association, StoreRequest
from claractl.platform.dicom.spool import SpoolRecord, SpoolWriter
from claractl.platform.dicom.storage import has_room

log = logging.getLogger("claractl.dicom")
PREFIX_BYTES = 64 * 1024     # the first bytes of each dataset kept in memory for the header check

class IncomingInstance:
    """The `StoreSink` for one C-STORE (see claractl.platform.dicom.scp)."""

    def __init__(self, *, root: Path, groups: GroupManager, settings: DicomSettings, spool: SpoolWriter,
                 ae: AEConfig | None, assoc: Association, request: StoreRequest,
                 on_done: Callable[[int, int], None]) -> None:
        self.root = root                  # the DICOM directory: groups live under it
        self.groups = groups
        self.settings = settings
        self.spool = spool
        self.ae = ae
        self.assoc = assoc
        self.request = request
        self.on_done = on_done            # (status, bytes received)
        self.size = 0                     # dataset bytes received (they are in the spool record)
        self.record: SpoolRecord | None = None
        self.header_len = 0
        self.prefix = bytearray()         # the dataset's first PREFIX_BYTES
        self.refusal: Refused | None = None
        self.group: Group | None = None
        self.publish_to: Path | None = None
        self.info: tuple[str, str, str, str] | None = None
        try:
            if ae is None:
                raise Refused(PROCESSING_FAILURE, f"AE {assoc.called_ae} is no longer configured")
            self._check_room(0)              # over the watermark: not a byte of it is written
            header = encode_part10_header(request.sop_class_uid, request.sop_instance_uid,
                                          str(request.transfer_syntax), assoc.calling_ae)
            self.record = spool.begin()
            self.record.write(header)
            self.header_len = len(header)
        except Refused as exc:
            self.refusal = exc
        except OSError as exc:
            self.refusal = Refused(OUT_OF_RESOURCES, f"cannot spool the instance: {exc}")

    def _check_room(self, incoming: int) -> None:
        ok, why = has_room(self.root, incoming, self.settings.watermark_percent, self.settings.reserve_mb)
        if not ok:
            raise Refused(OUT_OF_RESOURCES, f"out of resources: {why}")

    def write(self, fragment: memoryview) -> None:
        self.size += len(fragment)
        if self.refusal is not None:
            return                           # the rest of a refused dataset is read and dropped
        if len(self.prefix) < PREFIX_BYTES:
            self.prefix += fragment[:PREFIX_BYTES - len(self.prefix)]
        try:
            self.record.write(fragment)
        except OSError as exc:               # disk full while streaming
            self.refusal = Refused(OUT_OF_RESOURCES, f"cannot spool the instance: {exc}")

    def finish(self) -> tuple[int, str]:
        """Check, then make the instance durable; the status for the C-STORE response."""
        try:
            if self.refusal is not None:
                raise self.refusal
            self.record.commit(self._prepare)
        except Refused as exc:
            return self._refuse(exc.status, str(exc))
        except OSError as exc:
            return self._refuse(OUT_OF_RESOURCES, f"cannot store the instance: {exc}")
        self.on_done(SUCCESS, self.size)
        return SUCCESS, ""

    def _refuse(self, status: int, why: str) -> tuple[int, str]:
        self.discard()
        log.warning("C-STORE %s from %s (%s): 0x%04X %s", self.request.sop_instance_uid, self.assoc.peer,
                    self.assoc.calling_ae, status, why)
        self.on_done(status, self.size)
        return status, why

    def _prepare(self) -> dict:
        """Checks and group choice; the spool record's metadata. Raises Refused."""
        with self.record.reader(self.header_len) as dataset:      # read back from the page cache
            checked = check_dataset(dataset, self.size, self.request, self.ae.group_by, self.prefix)
        self._check_room(self.size)
        assoc = self.assoc
        try:
            group = self.groups.acquire(assoc.called_ae, checked.group_key, self.ae.timeout, assoc.calling_ae,
                                        assoc.peer)
        except OSError as exc:
            raise Refused(OUT_OF_RESOURCES, f"cannot create group directory: {exc}") from None
        self.group, self.info = group, checked.info
        name = f"{safe_name(self.request.sop_instance_uid)}.dcm"
        if self.settings.overwrite_duplicates or not (group.dir / name).exists():
            self.publish_to = group.dir / name
        else:
            log.info("C-STORE %s duplicate kept (overwrite_duplicates off)", self.request.sop_instance_uid)
        return {"dir": group.dir.relative_to(self.root).as_posix(), "file": name, "seq": time.time_ns(),
                "publish": self.publish_to is not None}

    def settle(self) -> None:
        """After the response: the file is copied into its group directory in the background."""
        group, info, self.group = self.group, self.info, None
        if group is None:
            return
        if self.publish_to is None:          # a duplicate we kept
            self.groups.release(group, info)
            return

        def published(ok: bool) -> None:
            if ok:
                self.groups.release(group, info)
            else:    # keep the group open: the next start restores the file from the spool
                log.error("DICOM group %s/%s stays open until the next start", group.called_ae, group.key)

        self.spool.publish(self.record, self.publish_to, published)

    def discard(self) -> None:
        if self.group is not None:
            self.groups.release(self.group, None)
            self.group = self.publish_to = None
        if self.record is not None:
            self.record.abandon()
            self.record = None
