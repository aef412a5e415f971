"""The receive spool's durability contract, on real files (claractl/platform/dicom/spool.py).

A record read back is exactly one that was committed, in order, with identical bytes; anything
torn, abandoned or left from a segment's previous use is not; recovery rewrites acknowledged
instances into their open group and nowhere else; and end to end, an instance whose C-STORE
said Success survives kill -9 even when its published file does not.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from claractl.platform.dicom.adapter import SPOOL_DIR
from claractl.platform.dicom.groups import GroupManager
from claractl.platform.dicom.spool import MAX_POOLED, SLOT, SUFFIX, WRITEBACK_CHUNK, Spool, read_records
from claractl.platform.store.models import AETitle
from tests.dicom.conftest import CALLED_AE, assert_job_input_is, dcmtk, jobs, scp_process, spool_records, wait_for

SEGMENT = 64 * 1024
# Byte offsets inside a record slot (spool._RECORD_HEADER "<4sHHQIQII").
DATA_LEN_FIELD = 20


def _bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _meta(i: int, **extra) -> dict:
    return {"dir": "AE/key.0000", "file": f"1.2.3.{i}.dcm", "seq": i, "publish": True, **extra}


def _commit(writer, data: bytes, meta: dict, fragments: int = 3):
    """Append `data` in several fragments (as the SCP does, mixing bytes and memoryviews), commit."""
    rec = writer.begin()
    step = max(1, -(-len(data) // fragments))
    for i in range(0, len(data), step):
        piece = data[i:i + step]
        rec.write(memoryview(piece) if i % 2 else piece)
    rec.commit(lambda: meta)
    return rec


def _append(writer, record: tuple[dict, bytes], fragments: int = 3):
    return _commit(writer, record[1], record[0], fragments)


@pytest.fixture
def spool(tmp_path):
    """Started, with no segment prepared ahead: the tests follow which segment is reused."""
    sp = Spool(tmp_path / "spool", segment_bytes=SEGMENT, prepared=0)
    sp.start()
    yield sp
    sp.stop()


def _unstarted_spool(directory: Path) -> Spool:
    """Records only, no background publisher: nothing gets published (a crash right after Success)."""
    directory.mkdir(parents=True, exist_ok=True)
    return Spool(directory, segment_bytes=SEGMENT, prepared=0)


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


# ---------------------------------------------------------------------------------------- records

def test_empty_and_never_activated_segments_have_no_records(spool, tmp_path):
    empty = tmp_path / "empty.spool"
    empty.write_bytes(b"")
    assert read_records(empty) == []
    path, fd = spool.take_segment()          # preallocated, header never written
    os.close(fd)
    assert path.stat().st_size == SEGMENT
    assert read_records(path) == []
    writer = spool.writer()
    rec = writer.begin()                     # header of a fresh epoch, no record committed yet
    rec.write(_bytes(5000, 1))
    assert read_records(writer.path) == []
    writer.close()


def test_committed_records_round_trip_in_order_with_identical_bytes(spool):
    writer = spool.writer()
    sizes = [1, SLOT - 1, SLOT, SLOT + 1, 0, 10_000]
    expected = [(_meta(i), _bytes(n, i)) for i, n in enumerate(sizes)]
    for meta, data in expected:
        _commit(writer, data, meta)
    assert read_records(writer.path) == expected
    writer.close()


def test_large_records_in_odd_sized_fragments_round_trip(spool):
    """Records larger than WRITEBACK_CHUNK, in fragments not aligned to pages, as a 16 KiB PDU
    stream delivers them: write-back starts mid-record and the bytes still come back exact."""
    writer = spool.writer()
    records = [(_meta(i), _bytes(WRITEBACK_CHUNK * 3 + 1234 * i + 7, i)) for i in range(3)]
    for meta, data in records:
        rec = writer.begin()
        for i in range(0, len(data), 16378):
            rec.write(memoryview(data)[i:i + 16378])
        rec.commit(lambda meta=meta: meta)
    assert read_records(writer.path) == records
    writer.close()


def test_abandoned_refused_and_uncommitted_records_are_invisible_and_their_space_reused(spool):
    writer = spool.writer()
    first = (_meta(1), _bytes(3000, 1))
    _append(writer, first)

    big = writer.begin()                      # an association aborted mid-instance
    big.write(_bytes(5 * SLOT, 2))
    big.abandon()
    assert read_records(writer.path) == [first]

    refused = writer.begin()                  # `prepare` refuses (bad dataset, no room …)
    assert refused.offset == big.offset
    refused.write(_bytes(2 * SLOT, 3))

    def refuse():
        raise ValueError("refused by the check")

    with pytest.raises(ValueError):
        refused.commit(refuse)
    assert read_records(writer.path) == [first]

    # A smaller record in the same space: the scan then lands inside the abandoned bytes and stops.
    second = (_meta(2), _bytes(100, 4))
    rec = _append(writer, second)
    assert rec.offset == big.offset
    assert read_records(writer.path) == [first, second]

    pending = writer.begin()                  # written but not committed when the process dies
    pending.write(_bytes(SLOT, 5))
    assert read_records(writer.path) == [first, second]
    writer.close()


def test_record_larger_than_a_segment_grows_it_and_a_full_segment_rotates(spool):
    writer = spool.writer()
    huge = (_meta(0), _bytes(3 * SEGMENT + 123, 0))
    _append(writer, huge, fragments=7)
    first_segment = writer.path
    assert first_segment.stat().st_size >= 3 * SEGMENT + 123
    in_first, in_second = [huge], []
    for i in range(1, 40):                    # fill what the growth left, until the writer moves on
        record = (_meta(i), _bytes(3 * SLOT, i))
        _append(writer, record)
        (in_first if writer.path == first_segment else in_second).append(record)
        if in_second:
            break
    assert in_second, "the writer never rotated to a new segment"
    assert read_records(first_segment) == in_first
    assert read_records(writer.path) == in_second
    writer.close()


# ---------------------------------------------------------------------------------------- torn records

def _three_records(spool):
    writer = spool.writer()
    records, recs = [], []
    for i, n in enumerate((2000, 9000, 500)):
        records.append((_meta(i), _bytes(n, i)))
        recs.append(_append(writer, records[-1]))
    writer.close()
    return writer.path, records, recs


@pytest.mark.parametrize("damage", ["data byte", "last data byte", "meta byte", "slot zeroed", "epoch byte"])
def test_damaged_record_stops_the_scan_before_it(spool, damage):
    path, records, recs = _three_records(spool)
    second = recs[1]
    if damage == "data byte":
        _flip(path, second.offset + SLOT + 4321)
    elif damage == "last data byte":
        _flip(path, second.offset + SLOT + second.size - 1)
    elif damage == "meta byte":
        _flip(path, second.offset + 40 + 3)
    elif damage == "epoch byte":
        _flip(path, second.offset + 8)
    else:                                      # the slot write never reached the disk
        with open(path, "r+b") as f:
            f.seek(second.offset)
            f.write(b"\0" * SLOT)
    assert read_records(path) == records[:1]


@pytest.mark.parametrize("cut", ["inside the last record's data", "inside the last slot", "at the last slot"])
def test_truncated_segment_keeps_the_records_before_the_cut(spool, cut):
    path, records, recs = _three_records(spool)
    last = recs[2]
    at = {"inside the last record's data": last.offset + SLOT + 100,
          "inside the last slot": last.offset + 20, "at the last slot": last.offset}[cut]
    os.truncate(path, at)
    assert read_records(path) == records[:2]


def test_damaged_segment_header_hides_every_record(spool):
    path, _, _ = _three_records(spool)
    _flip(path, 9)                              # a byte of the epoch: the header CRC fails
    assert read_records(path) == []


def test_damaged_length_field_stops_the_scan_instead_of_failing(spool):
    path, records, recs = _three_records(spool)
    with open(path, "r+b") as f:
        f.seek(recs[1].offset + DATA_LEN_FIELD)
        f.write(struct.pack("<Q", 1 << 60))
    assert read_records(path) == records[:1]


# ---------------------------------------------------------------------------------------- reuse

def test_checkpointed_segment_is_reused_and_its_previous_records_are_gone(spool, tmp_path):
    root = tmp_path / "dicom"
    root.mkdir()
    old = spool.writer()
    old_records = [(_meta(i), _bytes(3000, i)) for i in range(4)]    # each record: slot + 1 page
    old_recs = [_commit(old, data, meta) for meta, data in old_records]
    path = old.path
    old.close()
    spool.checkpoint(root)
    assert read_records(path) == []           # pooled with its header erased: recovery ignores it
    raw = path.read_bytes()                   # … though the old records' bytes are still there
    assert raw[old_recs[0].offset + SLOT:old_recs[0].offset + SLOT + 3000] == old_records[0][1]

    new = spool.writer()
    rec = new.begin()
    assert new.path == path                   # the same segment came back from the pool
    assert read_records(path) == []           # new epoch header: nothing of the previous use
    # A record of the same size as the old first one: the next slot is the old second record's,
    # still on disk and CRC-valid, but of the previous epoch.
    fresh = (_meta(99), _bytes(3000, 99))
    rec.write(fresh[1])
    rec.commit(lambda: fresh[0])
    raw = path.read_bytes()
    second = old_recs[1]
    assert second.offset == rec.offset + 2 * SLOT
    assert raw[second.offset + SLOT:second.offset + SLOT + second.size] == old_records[1][1]
    assert read_records(path) == [fresh]
    new.close()


def test_publishing_over_a_longer_file_leaves_exactly_the_record(spool, tmp_path):
    """A duplicate SOP Instance UID overwrites: the old file was longer, the new bytes must not
    keep its tail."""
    target = tmp_path / "x.dcm"
    target.write_bytes(_bytes(50000, 7))
    writer = spool.writer()
    data = _bytes(9000, 8)
    rec = _commit(writer, data, _meta(1))
    results = []
    writer.publish(rec, target, results.append)
    wait_for(lambda: results == [True], timeout=10)
    assert target.read_bytes() == data
    writer.close()


def test_a_copy_that_cannot_be_written_is_tried_again_until_it_can(spool, tmp_path):
    """The disk full (here: the group directory not there yet): the copy waits and is made once
    it can be, without a restart; the record's segment is not reused meanwhile."""
    target = tmp_path / "group" / "x.dcm"
    writer = spool.writer()
    data = _bytes(9000, 9)
    rec = _commit(writer, data, _meta(1))
    results = []
    writer.publish(rec, target, results.append)
    time.sleep(1.5)                        # at least one failed try
    assert results == [] and spool.copies_pending() == 1
    target.parent.mkdir()
    wait_for(lambda: results == [True], timeout=10)
    assert target.read_bytes() == data
    writer.close()


def test_segments_of_format_version_1_are_still_recovered(tmp_path, monkeypatch):
    """Version 1 (zlib CRC-32) segments left by an older claractl are read after an upgrade."""
    import zlib
    from claractl.platform.dicom import spool as spool_module
    monkeypatch.setattr(spool_module, "VERSION", 1)
    monkeypatch.setattr(spool_module, "_checksum", zlib.crc32)
    old = _unstarted_spool(tmp_path / "spool").writer()
    records = [(_meta(i), _bytes(6000 + i, i)) for i in range(3)]
    for record in records:
        _append(old, record)
    monkeypatch.undo()
    assert spool_module.VERSION == 2
    assert read_records(old.path) == records


def _stream(spool, root: Path, n: int, pause: float) -> list[Path]:
    """Commit and publish `n` records `pause` apart, as one association sending a series."""
    writer = spool.writer()
    targets = []
    for i in range(n):
        rec = _commit(writer, _bytes(20000, i), _meta(i))
        targets.append(root / f"{i}.dcm")
        writer.publish(rec, targets[-1], lambda ok: None)
        time.sleep(pause)
    writer.close()
    return targets


def test_copies_wait_until_instances_stop_arriving(spool, tmp_path, monkeypatch):
    from claractl.platform.dicom import spool as spool_module
    monkeypatch.setattr(spool_module, "PUBLISH_WHEN_IDLE", 1.0)
    targets = _stream(spool, tmp_path, 20, pause=0.01)
    assert spool.copies_pending() == 20 and not any(p.exists() for p in targets)
    wait_for(lambda: spool.copies_pending() == 0, timeout=10)
    assert [p.read_bytes() for p in targets] == [_bytes(20000, i) for i in range(20)]


def test_a_backlog_over_its_bound_is_copied_while_instances_keep_arriving(spool, tmp_path, monkeypatch):
    from claractl.platform.dicom import spool as spool_module
    monkeypatch.setattr(spool_module, "PUBLISH_WHEN_IDLE", 60.0)
    monkeypatch.setattr(spool_module, "PUBLISH_BACKLOG", 100000)      # five records
    targets = _stream(spool, tmp_path, 20, pause=0.01)
    wait_for(lambda: spool.copies_pending() <= 5, timeout=10)          # long before the 60 s pause
    assert sum(p.exists() for p in targets) >= 15


def test_segment_with_an_unpublished_record_is_not_reused_until_published(tmp_path):
    root = tmp_path / "dicom"
    root.mkdir()
    spool = _unstarted_spool(tmp_path / "spool")                  # publisher not started yet
    writer = spool.writer()
    data = _bytes(7000, 1)
    rec = _commit(writer, data, _meta(1))
    results = []
    writer.publish(rec, root / "x.dcm", results.append)
    first = writer.path
    writer.close()
    spool.checkpoint(root)
    other = spool.writer()
    other.begin()
    assert other.path != first                 # still needed: the record is its only copy
    assert read_records(first) == [(_meta(1), data)]
    spool.start()
    try:
        wait_for(lambda: results == [True], timeout=10)
        assert (root / "x.dcm").read_bytes() == data
        spool.checkpoint(root)
        again = spool.writer()
        again.begin()
        assert again.path == first
        again.close()
    finally:
        other.close()
        spool.stop()


def test_checkpoint_pools_at_most_max_pooled_segments_and_deletes_the_rest(spool, tmp_path):
    writers = [spool.writer() for _ in range(MAX_POOLED + 2)]
    for i, w in enumerate(writers):
        _commit(w, _bytes(100, i), _meta(i))
    assert len(_segments(spool.dir)) == MAX_POOLED + 2
    for w in writers:
        w.close()
    spool.checkpoint(tmp_path)
    assert len(_segments(spool.dir)) == MAX_POOLED


def test_start_prepares_zero_filled_segments_once_and_a_restart_reuses_them(tmp_path):
    root = tmp_path / "dicom"
    root.mkdir()
    spool = Spool(tmp_path / "spool", segment_bytes=SEGMENT)
    spool.start()
    prepared = _segments(spool.dir)
    assert len(prepared) == MAX_POOLED
    for path in prepared:
        assert path.read_bytes() == bytes(SEGMENT)
        assert path.stat().st_blocks * 512 >= SEGMENT         # written, not sparse
    writer = spool.writer()
    _commit(writer, _bytes(5000, 1), _meta(1, publish=False))
    assert writer.path in prepared                            # taken from the pool, not made
    spool.stop()                                              # the association never closed

    again = Spool(tmp_path / "spool", segment_bytes=SEGMENT)
    again.recover(root)
    again.start()
    try:
        assert _segments(again.dir) == prepared                  # the same files: nothing made again
        assert spool_records(again.dir) == {}
    finally:
        again.stop()


def test_no_segment_is_prepared_without_room_and_receiving_still_works(tmp_path):
    asked = []
    spool = Spool(tmp_path / "spool", segment_bytes=SEGMENT, room=lambda size: asked.append(size) or False)
    spool.start()
    try:
        assert asked == [SEGMENT] and _segments(spool.dir) == []
        writer = spool.writer()
        record = (_meta(1), _bytes(5000, 1))
        _append(writer, record)                       # a segment made on demand (fallocate)
        assert read_records(writer.path) == [record]
        writer.close()
    finally:
        spool.stop()


# ---------------------------------------------------------------------------------------- recovery

@pytest.fixture
def dicom_dir(tmp_path):
    d = tmp_path / "dicom"
    d.mkdir()
    return d


def _group(dicom_dir: Path, key: str):
    g = GroupManager(dicom_dir).acquire(CALLED_AE, key, 5.0, "CLARATEST", "127.0.0.1")
    assert (g.dir / "group.json").exists()
    return g


def _rel(dicom_dir: Path, path: Path) -> str:
    return path.relative_to(dicom_dir).as_posix()


def test_recover_rewrites_acknowledged_unpublished_instances(dicom_dir):
    group = _group(dicom_dir, "1.2.840.1")
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    a, b = spool.writer(), spool.writer()            # two associations, two segments
    files = {}
    for i, w in enumerate((a, b, a, b, a)):
        data = _bytes(2000 + 1500 * i, i)
        name = f"1.2.3.{i}.dcm"
        _commit(w, data, {"dir": _rel(dicom_dir, group.dir), "file": name, "seq": time.time_ns(), "publish": True})
        files[name] = data
    (group.dir / "1.2.3.1.dcm").write_bytes(files["1.2.3.1.dcm"][:100])     # a copy cut short by the crash
    # crash: no publish, no checkpoint, writers never closed
    assert len(_segments(spool.dir)) == 2

    restored = Spool(dicom_dir / SPOOL_DIR, segment_bytes=SEGMENT).recover(dicom_dir)

    assert restored == 5
    assert {p.name: p.read_bytes() for p in group.dir.glob("*.dcm")} == files
    assert _segments(dicom_dir / SPOOL_DIR) == _segments(spool.dir)      # kept for reuse …
    assert spool_records(dicom_dir / SPOOL_DIR) == {}                       # … with nothing to replay
    (rebuilt,) = GroupManager(dicom_dir).rebuild()
    assert rebuilt.id == group.id


def test_recover_skips_closed_groups_and_records_not_to_publish(dicom_dir):
    open_group = _group(dicom_dir, "1.2.840.1")
    closed = _group(dicom_dir, "1.2.840.2")
    shutil.rmtree(closed.dir)                       # closed: its files went to a job
    kept = open_group.dir / "1.2.3.7.dcm"
    kept.write_bytes(b"first copy, kept")          # overwrite_duplicates off: the duplicate was not published
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    w = spool.writer()
    ok = _bytes(1000, 1)
    _commit(w, ok, {"dir": _rel(dicom_dir, open_group.dir), "file": "1.2.3.1.dcm", "seq": 1, "publish": True})
    _commit(w, _bytes(1000, 2), {"dir": _rel(dicom_dir, closed.dir), "file": "1.2.3.2.dcm", "seq": 2,
                                 "publish": True})
    _commit(w, _bytes(1000, 3), {"dir": _rel(dicom_dir, open_group.dir), "file": "1.2.3.7.dcm", "seq": 3,
                                 "publish": False})

    assert Spool(dicom_dir / SPOOL_DIR).recover(dicom_dir) == 1

    assert (open_group.dir / "1.2.3.1.dcm").read_bytes() == ok
    assert kept.read_bytes() == b"first copy, kept"
    assert not closed.dir.exists()
    assert _segments(dicom_dir / SPOOL_DIR) == []


def test_recover_refuses_paths_outside_the_dicom_dir(dicom_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "group.json").write_text("{}")      # looks like an open group: only the path check stops it
    group = _group(dicom_dir, "1.2.840.1")
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    w = spool.writer()
    evil = [
        {"dir": "../outside", "file": "a.dcm"},
        {"dir": str(outside), "file": "b.dcm"},
        {"dir": _rel(dicom_dir, group.dir), "file": "../../../outside/c.dcm"},
        {"dir": f"{_rel(dicom_dir, group.dir)}/../../../outside", "file": "d.dcm"},
    ]
    for i, meta in enumerate(evil):
        _commit(w, _bytes(500, i), {**meta, "seq": i, "publish": True})
    good = _bytes(500, 9)
    _commit(w, good, {"dir": _rel(dicom_dir, group.dir), "file": "ok.dcm", "seq": 9, "publish": True})

    assert Spool(dicom_dir / SPOOL_DIR).recover(dicom_dir) == 1

    assert sorted(p.name for p in outside.iterdir()) == ["group.json"]
    assert (group.dir / "ok.dcm").read_bytes() == good
    assert _segments(dicom_dir / SPOOL_DIR) == []


def test_recover_later_duplicate_wins_whatever_segment_holds_it(dicom_dir):
    group = _group(dicom_dir, "1.2.840.1")
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    first, second = spool.writer(), spool.writer()
    target = {"dir": _rel(dicom_dir, group.dir), "file": "1.2.3.1.dcm", "publish": True}
    older, newer = _bytes(900, 1), _bytes(1900, 2)
    # the newer version sits in the segment that sorts first
    _commit(first, b"\0", {**target, "file": "anchor.dcm", "seq": 0})
    _commit(second, b"\0", {**target, "file": "anchor2.dcm", "seq": 0})
    segs = sorted([first.path, second.path])
    by_path = {first.path: first, second.path: second}
    _commit(by_path[segs[1]], older, {**target, "seq": 10})
    _commit(by_path[segs[0]], newer, {**target, "seq": 20})

    Spool(dicom_dir / SPOOL_DIR).recover(dicom_dir)

    assert (group.dir / "1.2.3.1.dcm").read_bytes() == newer


def test_recover_does_not_restore_a_torn_record(dicom_dir):
    group = _group(dicom_dir, "1.2.840.1")
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    w = spool.writer()
    rel = _rel(dicom_dir, group.dir)
    good = _bytes(3000, 1)
    _commit(w, good, {"dir": rel, "file": "good.dcm", "seq": 1, "publish": True})
    torn = _commit(w, _bytes(3000, 2), {"dir": rel, "file": "torn.dcm", "seq": 2, "publish": True})
    _flip(w.path, torn.offset + SLOT + 10)

    assert Spool(dicom_dir / SPOOL_DIR).recover(dicom_dir) == 1

    assert (group.dir / "good.dcm").read_bytes() == good
    assert not (group.dir / "torn.dcm").exists()


def test_recover_does_not_replay_an_older_duplicate_from_a_pooled_segment(dicom_dir):
    group = _group(dicom_dir, "1.2.840.1")
    spool = _unstarted_spool(dicom_dir / SPOOL_DIR)
    spool.start()
    try:
        target = group.dir / "1.2.3.1.dcm"
        meta = {"dir": _rel(dicom_dir, group.dir), "file": target.name, "publish": True}
        a, b = spool.writer(), spool.writer()          # two associations send the same SOP Instance UID
        for w, data in ((a, b"version 1"), (b, b"version 2")):
            rec = _commit(w, data, {**meta, "seq": time.time_ns()})
            done = []
            w.publish(rec, target, done.append)
            wait_for(lambda: done == [True], timeout=10)
        assert target.read_bytes() == b"version 2"
        a.close()
        b.close()
        spool.checkpoint(dicom_dir)                    # both pooled, records intact
        c = spool.writer()
        c.begin()                                      # a third association reuses one of them
        assert c.path == b.path
    finally:
        spool.stop()
    # kill -9 here; the next start:
    Spool(dicom_dir / SPOOL_DIR).recover(dicom_dir)
    assert target.read_bytes() == b"version 2"


# ---------------------------------------------------------------------------------------- end to end


def test_kill_9_acknowledged_instances_come_back_from_the_spool_and_make_one_job(platform, ct5):
    """The association is still open when the SCP dies: its segment was never retired, so no
    checkpoint ran (and the group's 60 s timeout cannot close it): the spool holds the only
    durable copy. Deleting / cutting the published files then stands for copies the background
    publisher had not made (or not flushed) yet."""
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 60.0
    config.save()
    with scp_process(config) as scp:
        ae = AE(ae_title="CLARATEST")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", config.dicom.port, ae_title=CALLED_AE)
        assert assoc.is_established
        for f in ct5[:4]:
            assert assoc.send_c_store(f).Status == 0
        wait_for(lambda: len(list((config.dicom_dir / CALLED_AE).rglob("*.dcm"))) == 4, timeout=20)
        os.kill(scp.pid, signal.SIGKILL)
        scp.wait(timeout=30)
        assoc.abort()
    (group_dir,) = (config.dicom_dir / CALLED_AE).iterdir()
    published = {p.name: p.read_bytes() for p in group_dir.glob("*.dcm")}
    assert spool_records(config.dicom_dir / SPOOL_DIR) == published             # the spool holds all four, byte for byte
    names = sorted(published)
    for name in names[:2]:
        (group_dir / name).unlink()
    for name in names[2:]:
        os.truncate(group_dir / name, 300)
    assert jobs(store) == []

    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 1.0
    with scp_process(config):
        assert {p.name: p.read_bytes() for p in group_dir.glob("*.dcm")} == published
        assert spool_records(config.dicom_dir / SPOOL_DIR) == {}               # replayed once: headers erased, segments pooled
        assert jobs(store) == []                        # rebuilt group keeps its 60 s timeout
        proc = dcmtk("storescu", "-aet", "CLARATEST", "-aec", CALLED_AE, "127.0.0.1", str(config.dicom.port),
                     str(ct5[4]))
        assert proc.returncode == 0, proc.stderr
        (job,) = wait_for(lambda: jobs(store), timeout=30)
    received = assert_job_input_is(config, job, ct5)
    for name, data in published.items():
        assert received[name].read_bytes() == data
    assert not group_dir.exists()
    assert len(jobs(store)) == 1

