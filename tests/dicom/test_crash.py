"""kill -9 during a series, restart, send the rest: one job with every instance."""

from __future__ import annotations

import os
import signal
import subprocess

import pydicom

from claractl.platform.dicom.adapter import SPOOL_DIR
from claractl.platform.dicom.spool import read_records
from claractl.platform.store.models import AETitle
from tests.dicom.conftest import CALLED_AE, DCMTK, PEER_ENV, assert_job_input_is, dcmtk, jobs, start_scp, wait_for


def _spooled(config) -> int:
    return sum(len(read_records(seg)) for seg in (config.dicom_dir / SPOOL_DIR).glob("*.spool"))


def test_kill_9_mid_series_then_rest_gives_one_complete_job(platform, ct200):
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 3.0
    config.save()
    scp = start_scp(config)
    sender = subprocess.Popen([str(DCMTK / "storescu"), "-aec", CALLED_AE, "+sd", "127.0.0.1",
                               str(config.dicom.port), str(ct200[0].parent)], env=PEER_ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Acknowledged instances are in the spool at once (their group files come later).
        wait_for(lambda: _spooled(config) >= 20, timeout=60, interval=0.005)
        os.kill(scp.pid, signal.SIGKILL)
        scp.wait()
        assert sender.wait(timeout=60) != 0          # the peer saw the association die
    finally:
        if sender.poll() is None:
            sender.kill()
    assert jobs(store) == []

    scp = start_scp(config)
    try:
        assert not list(config.dicom_dir.rglob("*.part"))       # crash leftovers removed on start
        stored_before = {p.stem for p in config.dicom_dir.rglob("*.dcm")}    # restored from the spool
        assert 20 <= len(stored_before) < 200
        uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in ct200}
        rest = [str(p) for uid, p in uids.items() if uid not in stored_before]
        proc = dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(config.dicom.port), *rest)
        assert proc.returncode == 0, proc.stderr
        found = wait_for(lambda: jobs(store), timeout=30)
    finally:
        scp.send_signal(signal.SIGTERM)
        scp.wait(timeout=30)
    assert len(found) == 1
    job = found[0]
    assert job.metadata_["instances"] == 200
    assert_job_input_is(config, job, ct200)
    assert len(jobs(store)) == 1
