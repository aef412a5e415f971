"""The receive spool: a write-ahead log that makes each received instance durable with one sync.

Making a new file durable costs two metadata syncs (the file, then its directory entry). So
each association appends its instances to a *segment*, a file of SEGMENT_BYTES written in
advance, and the C-STORE response says Success once the record is fdatasynced: one sync per
instance. The instance's file in its group directory is copied from the record afterwards by a
low-priority background thread, without a sync.

    segment: header slot (magic, epoch, CRC) then records, each at a 4 KiB boundary:
        slot (4 KiB): magic, version, epoch, meta length, data length, CRC-32C of meta and of data, meta (JSON)
        data: the Part 10 file
    The data is written as it arrives, and its write-back started every WRITEBACK_CHUNK bytes
    (sync_file_range), so the disk works while the network still delivers; the slot is written
    last, then one fdatasync, which finds little left to do. A scan stops at the first slot
    that is not a valid record of the segment's epoch (torn, or left from the segment's
    previous use).

Segments are zero-filled when made (`prepare`, at start, up to MAX_POOLED) so that a record's
sync has no extent metadata to commit, and reused (a pool) rather than made again; only when
the pool runs dry is a new one preallocated with fallocate, quick to make but slower to sync.

`checkpoint(root)` makes every published file durable (`syncfs`), then takes back the segments
whose records are all published: their header is erased (so recovery never replays them) and
they are pooled, or deleted; the adapter runs it before handing groups to jobs and every few
seconds. `recover(root)` runs at start: it rewrites the file of every valid record whose group
directory still exists (a closed group's directory is gone, and its files were checkpointed
before it closed), syncs, then pools the segments as a checkpoint does.
"""

from __future__ import annotations

import ctypes
import io
import json
import logging
import os
import queue
import struct
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

import crc32c

from claractl.platform.store.payloads import fsync_dir

log = logging.getLogger("claractl.dicom")

SLOT = 4096
SEGMENT_BYTES = 64 * 1024 * 1024           # default; DicomSettings.spool_segment_mb
MAX_POOLED = 4                # segments kept ready (zero-filled at the first start, reused after checkpoints)
SUFFIX = ".spool"
VERSION = 2
# The checksum of each format version: 2 uses CRC-32C, which the CPU computes (SSE 4.2 / ARMv8):
# ~0.03 ms per 512 KiB instance instead of zlib's 0.1 ms. Version 1 segments are still read.
_CHECKSUMS = {1: zlib.crc32, 2: crc32c.crc32c}
_checksum = _CHECKSUMS[VERSION]
_SEGMENT_HEADER = struct.Struct("<4sHHQ")                 # magic, version, reserved, epoch (+ CRC-32C)
_RECORD_HEADER = struct.Struct("<4sHHQIQII")              # magic, version, reserved, epoch, meta len,
#                                                           data len, checksum of meta, of data
_SEGMENT_MAGIC, _RECORD_MAGIC = b"CLSG", b"CLRS"


def _libc_function(name: str, argtypes: tuple):
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    return fn


_syncfs = _libc_function("syncfs", (ctypes.c_int,))
_sync_file_range = _libc_function("sync_file_range", (ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong,
                                                      ctypes.c_uint))
SYNC_FILE_RANGE_WRITE = 2
WRITEBACK_CHUNK = 256 * 1024     # start write-back of a record's data every this many bytes received
PUBLISH_WHEN_IDLE = 0.1          # seconds without a new record before queued copies are made …
PUBLISH_BACKLOG = 256 * 1024 * 1024   # … unless this many bytes wait: then at once, while receiving
PUBLISH_RETRY = 1.0            # s between tries of a copy that failed (disk full)
_copy_file_range = getattr(os, "copy_file_range", None)


def sync_filesystem(path: Path) -> None:
    """Flush every dirty file of the file system holding `path` (all file systems without syncfs)."""
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _align(n: int) -> int:
    return (n + SLOT - 1) // SLOT * SLOT


def _segment_header(epoch: int) -> bytes:
    head = _SEGMENT_HEADER.pack(_SEGMENT_MAGIC, VERSION, 0, epoch)
    return head + struct.pack("<I", _checksum(head))


class SpoolRecord:
    """One instance being appended: `write` fragments, then `commit(prepare)` or `abandon()`."""

    def __init__(self, writer: SpoolWriter, offset: int) -> None:
        self.writer = writer
        self.offset = offset
        self.size = 0
        self.crc = 0

    def write(self, data) -> None:
        w = self.writer
        pos = self.offset + SLOT + self.size
        w.ensure(pos + len(data))
        view = memoryview(data)
        while view:
            written = os.pwrite(w.fd, view, pos)
            view, pos = view[written:], pos + written
        self.crc = _checksum(data, self.crc)
        self.size += len(data)
        w.start_writeback(pos)

    def reader(self, start: int = 0) -> BinaryIO:
        """A seekable reader of this record's data from `start` on (from the page cache, normally)."""
        base = self.offset + SLOT + start
        return io.BufferedReader(_Window(self.writer.fd, base, base + self.size - start), 64 * 1024)

    def commit(self, prepare: Callable[[], dict]) -> dict:
        """`prepare()` checks and returns the record's metadata; then the slot is written and the
        record synced. Durable when this returns. If `prepare` raises, nothing is committed."""
        w = self.writer
        w.start_writeback(self.offset + SLOT + self.size, whole=True)   # the tail goes while prepare() runs
        meta = prepare()
        raw = json.dumps(meta, separators=(",", ":")).encode()
        if _RECORD_HEADER.size + len(raw) > SLOT:
            raise ValueError("spool record metadata larger than its slot")
        slot = _RECORD_HEADER.pack(_RECORD_MAGIC, VERSION, 0, w.epoch, len(raw), self.size, _checksum(raw),
                                   self.crc) + raw
        os.pwrite(w.fd, slot, self.offset)
        try:
            os.fdatasync(w.fd)
        except OSError:
            os.pwrite(w.fd, bytes(_RECORD_HEADER.size), self.offset)   # refused: must not be replayed
            raise
        w.spool.last_commit = time.monotonic()
        w.end = self.offset + SLOT + _align(self.size)
        return meta

    def abandon(self) -> None:
        """Nothing of it is valid; the next record reuses the space."""


class SpoolWriter:
    """The segment one association appends to (one thread; no locking on the write path)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.fd = -1
        self.path: Path | None = None
        self.epoch = 0
        self.end = 0          # where the next record starts
        self.allocated = 0
        self.written_back = 0  # write-back started up to here

    def begin(self) -> SpoolRecord:
        # A new segment when this one is nearly full, rather than growing into unwritten space.
        if self.fd < 0 or self.end + SLOT * 2 > self.allocated:
            self._next_segment()
        self.written_back = self.end + SLOT
        return SpoolRecord(self, self.end)

    def start_writeback(self, upto: int, whole: bool = False) -> None:
        """Let the disk take the record's data while the rest still arrives, so that the sync at
        commit finds little left to write. Whole pages only, but for the `whole` record's last
        one: a partly written page would go twice."""
        if not whole:
            upto -= upto % 4096
        if _sync_file_range is not None and upto - self.written_back >= (1 if whole else WRITEBACK_CHUNK):
            _sync_file_range(self.fd, self.written_back, upto - self.written_back, SYNC_FILE_RANGE_WRITE)
            self.written_back = upto

    def ensure(self, size: int) -> None:
        if size > self.allocated:     # one record larger than the rest of the segment
            grow = max(self.spool.segment_bytes, size - self.allocated)
            os.posix_fallocate(self.fd, self.allocated, grow)
            self.allocated += grow

    def _next_segment(self) -> None:
        self.close()
        self.path, self.fd = self.spool.take_segment()
        self.allocated = os.fstat(self.fd).st_size
        self.epoch = time.time_ns()
        self.end = SLOT
        self.spool.opened(self.path)
        try:
            os.pwrite(self.fd, _segment_header(self.epoch), 0)
            os.fdatasync(self.fd)
        except OSError:
            self.close()
            raise

    def publish(self, record: SpoolRecord, target: Path, done: Callable[[bool], None]) -> None:
        """Copy a committed record's data to `target` in the background; then `done(ok)`."""
        self.spool.publish(self.path, record.offset + SLOT, record.size, target, done)

    def close(self) -> None:
        """No more records: the segment is reused after the next checkpoint."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.spool.closed(self.path)


class Spool:
    """The segments of all associations: reuse, background publishing, checkpoints, recovery."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES, prepared: int = MAX_POOLED,
                 room: Callable[[int], bool] = lambda size: True) -> None:
        self.dir = directory
        self.segment_bytes = segment_bytes
        self.prepared = min(prepared, MAX_POOLED)    # zero-filled segments `start` makes ready …
        self.room = room                             # … while room(size) says the disk has room
        self._lock = threading.Lock()
        self._pool: list[Path] = []               # checkpointed segments, free for reuse
        self._outstanding: dict[Path, int] = {}   # segment in use → records not yet published
        self._closing: set[Path] = set()          # no more records will come
        self._pinned: set[Path] = set()           # a record could not be published: keep for recovery
        self._done: list[Path] = []               # every record published; reusable after the next sync
        self._publish_queue: queue.Queue = queue.Queue()
        self._publisher: threading.Thread | None = None
        self._backlog = 0                         # bytes queued for publishing
        self._stopping = False
        self.last_commit = 0.0                    # monotonic time of the last committed record
        self._names = iter(range(1, 1 << 62))

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self._stopping = False
        self._publisher = threading.Thread(target=self._publish_loop, name="dicom-spool-publisher", daemon=True)
        self._publisher.start()

    def stop(self) -> None:
        """Write every queued file and stop the publisher (segments stay for the next start)."""
        if self._publisher is None:
            return
        self._stopping = True          # copy what is queued now, without waiting for a pause
        self._publish_queue.join()
        self._publish_queue.put(None)
        self._publisher.join(timeout=30)
        self._publisher = None

    def writer(self) -> SpoolWriter:
        return SpoolWriter(self)

    def take_segment(self) -> tuple[Path, int]:
        """A pooled segment, else a new one preallocated with fallocate: quick to make, but its
        extents are 'unwritten', so each record's sync also has their conversion to commit."""
        with self._lock:
            path = self._pool.pop() if self._pool else None
        if path is not None:
            return path, os.open(path, os.O_RDWR)
        return self._new_segment(zero_filled=False)

    def prepare(self) -> None:
        """Fill the pool up to `prepared` zero-filled segments (written once, at the first start;
        kept across restarts), whose records sync without any metadata to commit: the way
        PostgreSQL initialises its WAL segments. A disk near its watermark only means fewer are
        ready (then new segments are preallocated on demand)."""
        while True:
            with self._lock:
                if len(self._pool) >= self.prepared:
                    return
            if not self.room(self.segment_bytes):
                log.warning("DICOM spool: %d segment(s) ready; no room for more under the watermark/reserve",
                            len(self._pool))
                return
            try:
                path, fd = self._new_segment(zero_filled=True)
            except OSError as exc:
                log.warning("DICOM spool: cannot prepare a segment (%s); new ones are preallocated on demand", exc)
                return
            os.close(fd)
            with self._lock:
                self._pool.append(path)

    def _new_segment(self, zero_filled: bool) -> tuple[Path, int]:
        path = self.dir / f"{os.getpid()}-{time.time_ns()}-{next(self._names)}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            if zero_filled:
                zeros = bytes(1 << 20)
                for offset in range(0, self.segment_bytes, len(zeros)):
                    os.pwrite(fd, zeros[:self.segment_bytes - offset], offset)
            else:
                os.posix_fallocate(fd, 0, self.segment_bytes)
            os.fsync(fd)         # size and extents now, so that a record's fdatasync has less to commit
            fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return path, fd

    def opened(self, path: Path) -> None:
        with self._lock:
            self._outstanding[path] = 0

    def closed(self, path: Path) -> None:
        with self._lock:
            self._closing.add(path)
            self._retire_if_done(path)

    def _retire_if_done(self, path: Path) -> None:
        if path in self._closing and not self._outstanding.get(path):
            self._closing.discard(path)
            self._outstanding.pop(path, None)
            if path not in self._pinned:
                self._done.append(path)

    def copies_pending(self) -> int:
        """Committed records not yet copied into their group directory."""
        return self._publish_queue.unfinished_tasks

    def retired_segments(self) -> int:
        with self._lock:
            return len(self._done)

    # ------------------------------------------------------------------ publishing
    def publish(self, segment: Path, offset: int, length: int, target: Path, done: Callable[[bool], None]) -> None:
        with self._lock:
            self._outstanding[segment] += 1
            self._backlog += length
        self._publish_queue.put((segment, offset, length, target, done))

    def _wait_until_idle(self) -> None:
        """Copies wait while instances keep arriving: on a small machine they would take CPU and
        page-cache work from the receive path (~15% of its throughput here). A group cannot close
        before its copies are made, so they are late by PUBLISH_WHEN_IDLE at most once the
        sender pauses; under sustained load the backlog bound lets them run alongside."""
        while self._backlog < PUBLISH_BACKLOG and not self._stopping:
            idle = time.monotonic() - self.last_commit
            if idle >= PUBLISH_WHEN_IDLE:
                return
            time.sleep(min(PUBLISH_WHEN_IDLE - idle, 0.05))

    def _publish_loop(self) -> None:
        try:    # copies can wait; on a small machine they must not slow down receiving
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while True:
            item = self._publish_queue.get()
            if item is None:
                self._publish_queue.task_done()
                return
            segment, offset, length, target, done = item
            self._wait_until_idle()
            ok = self._copy_until_written(segment, offset, length, target)
            with self._lock:
                self._outstanding[segment] -= 1
                self._backlog -= length
                if not ok:
                    self._pinned.add(segment)
                self._retire_if_done(segment)
            try:
                done(ok)
            finally:
                self._publish_queue.task_done()

    def _copy_until_written(self, segment: Path, offset: int, length: int, target: Path) -> bool:
        """Copy a record into its group; while that fails (the disk full, say) try again every
        second — the group stays open until then, and ingest resumes by itself once there is room.
        Only when stopping does a failure stand: the record stays in the spool and the next start
        restores the file."""
        failures = 0
        while True:
            try:
                _copy(segment, offset, length, target)
            except OSError as exc:
                failures += 1
                if self._stopping:
                    log.error("DICOM spool: %s cannot be written (%s); the instance stays in the spool and "
                              "is restored at the next start", target, exc)
                    return False
                if failures == 1:
                    log.error("DICOM spool: %s cannot be written (%s); trying again every second", target, exc)
                time.sleep(PUBLISH_RETRY)
                continue
            if failures:
                log.warning("DICOM spool: %s written after %d failed tries", target, failures)
            return True

    # ------------------------------------------------------------------ checkpoint and recovery
    def checkpoint(self, root: Path) -> None:
        """Make every published file under `root` durable, then reuse the segments that are done."""
        with self._lock:
            done, self._done = self._done, []
        sync_filesystem(root)
        self._reuse(done)

    def _reuse(self, segments: list[Path]) -> None:
        """Pool what fits (header erased), delete the rest."""
        with self._lock:
            keep = max(0, MAX_POOLED - len(self._pool))
        for path in segments[keep:]:
            path.unlink(missing_ok=True)
        pooled = [path for path in segments[:keep] if _invalidate(path)]
        with self._lock:
            self._pool.extend(pooled)

    def recover(self, root: Path) -> int:
        """Rewrite the files of valid records whose group is still open; then pool the segments
        for reuse (a segment smaller than the configured size is deleted)."""
        segments = sorted(self.dir.glob(f"*{SUFFIX}")) if self.dir.exists() else []
        records = []
        for path in segments:
            records.extend(read_records(path))
        records.sort(key=lambda r: r[0].get("seq", 0))     # a later duplicate wins, as it did live
        restored = 0
        for meta, data in records:
            target = root / meta["dir"] / meta["file"]
            if not meta.get("publish", True) or not _inside(root, target) or not (target.parent / "group.json").exists():
                continue        # the group was closed: its files went to a job after a checkpoint
            with open(target, "wb") as f:
                f.write(data)
            restored += 1
        if segments:
            sync_filesystem(root)
            log.info("DICOM spool: %d segment(s) replayed, %d instance file(s) restored", len(segments), restored)
        fits = [path for path in segments if path.stat().st_size >= self.segment_bytes]
        for path in set(segments) - set(fits):
            path.unlink(missing_ok=True)
        self._reuse(fits)
        return restored


def _copy(segment: Path, offset: int, length: int, target: Path) -> None:
    """`length` bytes of `segment` from `offset` into `target`, in the kernel where it can; no
    sync: the record is the durable copy until a checkpoint. Not O_TRUNC: ext4 writes a file
    back at close when it was truncated (auto_da_alloc), a cost for every instance; a longer
    file left by a duplicate is cut after the copy instead."""
    src = os.open(segment, os.O_RDONLY)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            done = 0
            while done < length:
                if _copy_file_range is not None:
                    n = _copy_file_range(src, dst, length - done, offset + done, done)
                else:
                    n = os.pwrite(dst, os.pread(src, min(length - done, 1 << 20), offset + done), done)
                if n <= 0:
                    raise OSError(f"short copy into {target}")
                done += n
            if os.fstat(dst).st_size > length:
                os.ftruncate(dst, length)
        finally:
            os.close(dst)
    finally:
        os.close(src)


class _Window(io.RawIOBase):
    """Read-only view of [start, end) of an open file, by pread: no shared file position."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.start, self.end, self.pos = fd, start, end, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.end - self.start - self.pos))
        if not n:
            return 0
        got = os.preadv(self.fd, [memoryview(buffer)[:n]], self.start + self.pos)
        self.pos += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.end - self.start}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos


def _invalidate(segment: Path) -> bool:
    """Erase a retired segment's header (synced), so that recovery never replays its records: a
    newer copy of an instance may be in a segment reused since. False if it could not be."""
    try:
        fd = os.open(segment, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(SLOT), 0)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        return True
    except OSError as exc:
        log.warning("DICOM spool: cannot reuse %s (%s); deleted", segment.name, exc)
        segment.unlink(missing_ok=True)
        return False


def _inside(root: Path, path: Path) -> bool:
    return path.is_relative_to(root) and ".." not in path.relative_to(root).parts


def read_records(path: Path) -> list[tuple[dict, bytes]]:
    """Valid records of a segment's current epoch, in order."""
    out = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_SEGMENT_HEADER.size + 4)
        if len(head) < _SEGMENT_HEADER.size + 4:
            return out
        magic, segment_version, _, epoch = _SEGMENT_HEADER.unpack_from(head)
        checksum = _CHECKSUMS.get(segment_version)
        if (magic != _SEGMENT_MAGIC or checksum is None
                or struct.unpack_from("<I", head, _SEGMENT_HEADER.size)[0] != checksum(head[:_SEGMENT_HEADER.size])):
            return out          # never activated, or its header write was torn: no acknowledged record
        offset = SLOT
        while True:
            f.seek(offset)
            slot = f.read(SLOT)
            if len(slot) < _RECORD_HEADER.size:
                break
            magic, version, _, rec_epoch, meta_len, data_len, crc_meta, crc_data = _RECORD_HEADER.unpack_from(slot)
            if (magic != _RECORD_MAGIC or version != segment_version or rec_epoch != epoch
                    or _RECORD_HEADER.size + meta_len > SLOT):
                break
            if data_len > size - offset - SLOT:
                break           # a damaged length: nothing valid can follow
            raw = slot[_RECORD_HEADER.size:_RECORD_HEADER.size + meta_len]
            data = f.read(data_len)
            if checksum(raw) != crc_meta or len(data) != data_len or checksum(data) != crc_data:
                log.warning("DICOM spool %s: torn record at offset %d ignored (never acknowledged)", path.name, offset)
                break
            try:
                meta = json.loads(raw)
                str(meta["dir"]), str(meta["file"])
            except (ValueError, KeyError, TypeError):
                break
            out.append((meta, data))
            offset += SLOT + _align(data_len)
    return out
