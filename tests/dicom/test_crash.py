"""kill -9 during a series, restart, send the rest: one job with every instance."""

from __future__ import annotations

import os
import signal
import subprocess

import pydicom

from claractl.platform.dicom.adapter import SPOOL_DIR
from claractl.platform.store.models import AETitle
from tests.dicom.conftest import (CALLED_AE, DCMTK, PEER_ENV, assert_job_input_is, dcmtk, jobs, scp_process,
                                  spool_records, wait_for)


def test_kill_9_mid_series_then_rest_gives_one_complete_job(platform, ct200):
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 3.0
    config.save()
    with scp_process(config) as scp:
        sender = subprocess.Popen([str(DCMTK / "storescu"), "-aec", CALLED_AE, "+sd", "127.0.0.1",
                                   str(config.dicom.port), str(ct200[0].parent)], env=PEER_ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Acknowledged instances are in the spool at once (their group files come later).
            wait_for(lambda: len(spool_records(config.dicom_dir / SPOOL_DIR)) >= 20, timeout=60, interval=0.005)
            os.kill(scp.pid, signal.SIGKILL)
            scp.wait()
            assert sender.wait(timeout=60) != 0          # the peer saw the association die
        finally:
            if sender.poll() is None:
                sender.kill()
    assert jobs(store) == []

    with scp_process(config):
        assert not list(config.dicom_dir.rglob("*.part"))       # crash leftovers removed on start
        stored_before = {p.stem for p in config.dicom_dir.rglob("*.dcm")}    # restored from the spool
        assert 20 <= len(stored_before) < 200
        uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in ct200}
        rest = [str(p) for uid, p in uids.items() if uid not in stored_before]
        proc = dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(config.dicom.port), *rest)
        assert proc.returncode == 0, proc.stderr
        (job,) = wait_for(lambda: jobs(store), timeout=30)
    assert_job_input_is(config, job, ct200)
    assert len(jobs(store)) == 1
