"""Groups on disk: survive a clean restart, hand-off is idempotent after a crash, unrouted data is kept."""

from __future__ import annotations

import shutil

from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from claractl.platform.dicom import DicomAdapter
from claractl.platform.dicom.access import AccessControl
from claractl.platform.dicom.groups import GroupManager
from claractl.platform.dicom.handoff import close_group
from claractl.platform.store.models import AETitle
from tests.dicom.conftest import CALLED_AE, jobs, wait_for, wait_published


def _send(port, files):
    ae = AE(ae_title="CLARATEST")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=CALLED_AE)
    for f in files:
        assert assoc.send_c_store(f).Status == 0
    assoc.release()


def test_open_group_survives_stop_and_start(platform, ct5):
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 30.0
    a = DicomAdapter(config, store, export_agent=False)
    a.start()
    _send(a.port, ct5[:2])
    a.stop()
    assert jobs(store) == []
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 3.0     # margin for a loaded machine before the rest arrives
    b = DicomAdapter(config, store, export_agent=False, close_interval=0.05)
    b.start()
    try:
        assert b.status()["groups_open"] == 1
        _send(b.port, ct5[2:])
        found = wait_for(lambda: jobs(store))
    finally:
        b.stop()
    assert len(found) == 1 and found[0].metadata_["instances"] == 5
    assert found[0].metadata_["calling_ae"] == "CLARATEST"


def test_close_again_after_crash_creates_no_second_job(adapter, platform, ct5, tmp_path):
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).timeout = 60.0
    adapter.access.invalidate()
    _send(adapter.port, ct5)
    wait_published(adapter)
    (group,) = adapter.groups.take_due(force=True)
    backup = tmp_path / "backup"
    shutil.copytree(group.dir, backup)
    access = AccessControl(store)
    assert len(close_group(config, store, group, access.ae(CALLED_AE))) == 1
    # A crash after the commit but before the directory was removed: the directory is back.
    shutil.copytree(backup, group.dir)
    manager = GroupManager(config.dicom_dir)
    (again,) = manager.rebuild()
    assert again.id == group.id and len(again.instances) == 5
    assert close_group(config, store, again, access.ae(CALLED_AE)) == []
    assert len(jobs(store)) == 1 and not again.dir.exists()


def test_group_without_pipeline_is_kept_not_deleted(adapter, platform, ct5):
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).pipelines = ["does-not-exist"]
    adapter.access.invalidate()
    _send(adapter.port, ct5[:2])
    wait_for(lambda: len(list((config.dicom_dir / ".unrouted").rglob("*.dcm"))) == 2)
    assert jobs(store) == []
    assert not list((config.dicom_dir / CALLED_AE).rglob("*.dcm"))
