"""Several DICOM receivers on one state volume (high availability on kubernetes, replicas.py):
each keeps its own directory; a stopping one drains, closes its groups into jobs and removes its
directory; the directory of one that died is adopted by a live one."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import threading

import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from claractl.platform.dicom import DicomAdapter
from claractl.platform.dicom.replicas import REPLICAS_DIR
from claractl.platform.dicom.synthetic import make_ct_series
from claractl.platform.store.models import AETitle
from tests.dicom.conftest import CALLED_AE, DCMTK, PEER_ENV, assert_job_input_is, dcmtk, jobs, scp_process, wait_for
from tests.ports import free_port


def receiver(config, replica: str, **settings):
    cfg = copy.deepcopy(config)
    cfg.cluster.shared_state, cfg.cluster.replica = True, replica
    cfg.dicom.port = free_port()
    for key, value in settings.items():
        setattr(cfg.dicom, key, value)
    return cfg


def keep_groups_open(store) -> None:
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 600.0        # only a stop (or an adoption) closes them


def send(cfg, files) -> None:
    proc = dcmtk("storescu", "-aet", "STORESCU", "-aec", CALLED_AE, "127.0.0.1", str(cfg.dicom.port), *map(str, files))
    assert proc.returncode == 0, proc.stderr


def test_receivers_keep_their_groups_apart_and_a_stopping_one_hands_its_groups_over(platform, ct5, tmp_path):
    config, store = platform
    keep_groups_open(store)
    study_b = make_ct_series(tmp_path / "b", 5, size=64, patient_id="SYNTH002")
    cfg_a, cfg_b = receiver(config, "rx-a"), receiver(config, "rx-b")
    a, b = (DicomAdapter(c, store, close_interval=0.05) for c in (cfg_a, cfg_b))
    a.start()
    b.start()
    try:
        assert a.export_agent is None and b.export_agent is None     # one agent runs beside the engine
        send(cfg_a, ct5)
        send(cfg_b, study_b)
        replicas = config.dicom_dir / REPLICAS_DIR
        wait_for(lambda: len(list((replicas / "rx-a").rglob("*.dcm"))) == 5)
        wait_for(lambda: len(list((replicas / "rx-b").rglob("*.dcm"))) == 5)
        assert jobs(store) == []

        a.stop()
        (job,) = jobs(store)
        assert_job_input_is(config, job, ct5)
        assert not (replicas / "rx-a").exists()                 # nothing left for anyone to adopt
        assert (replicas / "rx-b").is_dir() and b.groups.open_count() == 1
    finally:
        b.stop()
    first, second = jobs(store)
    assert_job_input_is(config, second, study_b)
    assert list(replicas.iterdir()) == []


def test_a_draining_receiver_refuses_new_associations_and_finishes_the_one_in_flight(platform, ct5):
    config, store = platform
    keep_groups_open(store)
    cfg = receiver(config, "rx-drain", drain_seconds=30.0)
    adapter = DicomAdapter(cfg, store, close_interval=0.05)
    adapter.start()
    scu = AE(ae_title="STORESCU")
    scu.add_requested_context(CTImageStorage)
    datasets = [pydicom.dcmread(p) for p in ct5]
    assoc = scu.associate("127.0.0.1", cfg.dicom.port, ae_title=CALLED_AE)
    assert assoc.is_established
    stopper = threading.Thread(target=adapter.stop)
    try:
        assert [assoc.send_c_store(ds).Status for ds in datasets[:2]] == [0, 0]
        stopper.start()
        wait_for(lambda: adapter.status()["draining"])
        refused = scu.associate("127.0.0.1", cfg.dicom.port, ae_title=CALLED_AE)
        assert refused.is_rejected
        rj = refused.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x01)   # transient: try elsewhere
        assert stopper.is_alive()                                # waits for the association in flight
        assert [assoc.send_c_store(ds).Status for ds in datasets[2:]] == [0, 0, 0]
        assoc.release()
        stopper.join(timeout=30)
        assert not stopper.is_alive()
    finally:
        if assoc.is_established:
            assoc.abort()
        stopper.join(timeout=30)
    (job,) = jobs(store)
    assert_job_input_is(config, job, ct5)


def test_the_directory_of_a_receiver_that_died_is_adopted_by_a_live_one(platform, ct200):
    config, store = platform
    keep_groups_open(store)
    dead = receiver(config, "rx-dead")
    dead.save()                                    # what `python -m claractl.platform.dicom` reads
    with scp_process(dead) as scp:
        send(dead, ct200[:50])
        sender = subprocess.Popen([str(DCMTK / "storescu"), "-aec", CALLED_AE, "127.0.0.1", str(dead.dicom.port),
                                   *map(str, ct200[50:])], env=PEER_ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.kill(scp.pid, signal.SIGKILL)           # mid-association: some acknowledged, some not
        scp.wait()
        sender.wait(timeout=60)
    own = config.dicom_dir / REPLICAS_DIR / "rx-dead"
    assert own.is_dir() and jobs(store) == []

    live = DicomAdapter(receiver(config, "rx-live"), store, close_interval=0.05)
    live.keeper.stale_after, live.keeper.scan_every = 1.0, 0.2
    live.start()
    try:
        (job,) = wait_for(lambda: jobs(store), timeout=30)
        assert not own.exists()
        assert live.status()["adopted_dirs"] == 1
    finally:
        live.stop()
    received = {p.name for p in (config.payloads_dir / job.payload_id / "input").iterdir()}
    sent = [p for p in ct200 if f"{pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID}.dcm" in received]
    assert len(sent) >= 50                         # at least the first association's, all acknowledged
    assert_job_input_is(config, job, sent)
