"""Faults during the peak-hour load (10x, shorter than the bench's hour): the platform killed with
SIGKILL and started again, PostgreSQL restarted, the disk filling up, the PACS down, a sender
that stalls mid-instance. After each, nothing is lost: every instance acknowledged to a sender is
in a job (exactly once, unless the sender had to send it again), every job finishes HEALTHY, and
its result reaches the PACS through exactly one export task."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from claractl.platform.store import Store
from claractl.platform.store.models import ExportState, ExportTask, Job, JobState
from peak_load.rig import CALLED_AE
from peak_load.run import Run, run_peak
from tests.dicom.rawpdu import CT, EXPLICIT_LE, RawPeer, p_data, store_command
from tests.dicom.conftest import wait_for
from tests.load.conftest import SCALE, assert_nothing_lost

LOAD = dict(multiplier=10, scale=SCALE, keep_payloads=True, group_timeout=2)


def in_flight(run: Run) -> str:
    """What the platform is doing right now: a job running, or an export being sent ("" if neither)."""
    store = Store(run.rig.config.database_url)
    try:
        with store.session() as s:
            if s.scalars(select(ExportTask.id).where(ExportTask.state == ExportState.IN_PROGRESS)).first():
                return "an export in progress"
            if s.scalars(select(Job.id).where(Job.state == JobState.RUNNING)).first():
                return "a job running"
    finally:
        store.dispose()
    return ""


def test_platform_killed_with_sigkill_mid_load_and_started_again(tmp_path):
    def fault(run: Run) -> None:
        time.sleep(10)
        what = wait_for(lambda: in_flight(run), timeout=15, interval=0.005)
        run.rig.kill9()
        run.note(f"platform killed with SIGKILL ({what})")
        time.sleep(3)
        run.rig.start()
        run.note("platform started again")

    result = run_peak(tmp_path, duration=30, during=fault, **LOAD)
    assert_nothing_lost(result)
    assert any(r.study.resent or r.study.attempts > 1 for r in result.records)   # senders were cut off


def test_postgresql_restarted_mid_load(tmp_path, throwaway_postgres):
    def fault(run: Run) -> None:
        time.sleep(10)
        throwaway_postgres.stop()
        run.note("PostgreSQL stopped")
        time.sleep(5)
        throwaway_postgres.start()
        run.note("PostgreSQL started again")

    result = run_peak(tmp_path, duration=30, database=throwaway_postgres.url, during=fault, **LOAD)
    assert_nothing_lost(result)


@pytest.fixture
def small_disk(tmp_path):
    """The platform's state dir on a 400 MB file system of its own (tmpfs), so it can fill up."""
    state = tmp_path / "state"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m", "tmpfs", str(state)], check=True)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_disk_filling_up_refuses_with_out_of_resources_then_resumes(tmp_path, small_disk):
    def fault(run: Run) -> None:
        time.sleep(10)
        st = os.statvfs(small_disk)
        total, free = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        balloon = small_disk / "balloon"
        with open(balloon, "wb") as f:                   # someone else's data: 92 % full
            f.write(b"\0" * int(free - 0.08 * total))
        run.note("disk filled to 92 % (watermark 85 %)")
        wait_for(lambda: any("OutOfResources" in p for s in run.pool.studies for p in s.problems), timeout=60)
        time.sleep(5)
        balloon.unlink()
        run.note("space freed")

    result = run_peak(tmp_path, duration=35, dicom={"watermark_percent": 85, "spool_segment_mb": 8}, during=fault,
                      **LOAD)
    assert any("OutOfResources" in p for r in result.records for p in r.study.problems)
    assert_nothing_lost(result)
    # Nothing half-written: no partial files, and the receive area holds no instance files.
    assert not list(small_disk.rglob("*.part"))
    assert not [p for p in (small_disk / "dicom").rglob("*.dcm") if ".spool" not in p.parts]


def test_pacs_down_for_a_while_then_every_result_delivered(tmp_path):
    def fault(run: Run) -> None:
        time.sleep(10)
        run.pacs.stop()
        run.note("PACS down")
        waiting = wait_for(lambda: [t for t in run.rig.client.list_export_tasks(state="PENDING")
                                      if "waiting for the destination" in (t["message"] or "")], timeout=60)
        # What an operator sees: `claractl jobs describe` and the dashboard's job view.
        task = waiting[0]
        out = subprocess.run([sys.executable, "-m", "claractl", "--no-color", "jobs", "describe", task["job_id"],
                              "--api", run.rig.config.api_url], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "COLUMNS": "300"})
        assert out.returncode == 0, out.stderr
        assert "PENDING" in out.stdout and "waiting for the destination" in out.stdout, out.stdout
        job = run.rig.client._json("GET", f"/api/v1/render/jobs/{task['job_id']}")
        (shown,) = [t for t in job["export_tasks"] if t["id"] == task["id"]]
        assert shown["state"] == "PENDING" and "waiting for the destination" in shown["message"]
        run.note(f"{len(waiting)} exports waiting, shown by jobs describe and the dashboard")
        time.sleep(20)
        run.pacs.start()
        run.note("PACS back")

    result = run_peak(tmp_path, duration=30, during=fault, dashboard=True, **LOAD)
    assert_nothing_lost(result)


def test_a_sender_stalling_mid_instance_times_out_alone(tmp_path):
    """Its association is aborted after the network timeout, the partial instance is dropped, and
    the other senders' associations carry on (nothing of theirs lost)."""
    stalled_uid = "1.2.826.0.1.3680043.8.498.99999"

    def fault(run: Run) -> None:
        time.sleep(5)
        peer = RawPeer(run.rig.dicom_port, timeout=120)
        try:
            assert peer.associate(run.pool.aets[0], CALLED_AE, [(1, CT, EXPLICIT_LE)]) == 0x02
            peer.send(p_data(1, store_command(CT, stalled_uid), command=True))
            peer.send(p_data(1, b"\x08\x00\x16\x00UI" + b"\x1a\x00" + CT.encode() + b"\x00",
                             command=False, last=False))
            run.note("a sender stalled after the first fragment of an instance")
            started = time.monotonic()
            answer = peer.read_pdu()                     # silence … until the SCP gives up on it
            assert answer is None or answer[0] == 0x07, answer
            run.note(f"its association was aborted after {time.monotonic() - started:.0f} s")
        finally:
            peer.close()

    result = run_peak(tmp_path, duration=25, dicom={"network_timeout": 10}, during=fault, **LOAD)
    assert_nothing_lost(result)
    assert any("aborted after" in n for n in result.notes), result.notes
    state = tmp_path / "state"
    assert not list(state.rglob(f"{stalled_uid}.dcm"))
