"""Receiving with real dcmtk peers: echo, a 200-slice series → one job, byte-identical."""

from __future__ import annotations


import pydicom

from tests.dicom.conftest import CALLED_AE, PIPELINE, assert_job_input_is, dcmtk, jobs, wait_for, wait_published


def test_echoscu_succeeds(adapter):
    proc = dcmtk("echoscu", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port))
    assert proc.returncode == 0, proc.stderr
    assert adapter.status()["associations_accepted"] == 1


def test_storescu_series_creates_one_job_with_identical_instances(adapter, platform, ct200):
    config, store = platform
    proc = dcmtk("storescu", "-aec", CALLED_AE, "+sd", "127.0.0.1", str(adapter.port), str(ct200[0].parent))
    assert proc.returncode == 0, proc.stderr
    found = wait_for(lambda: jobs(store))
    assert len(found) == 1
    job = found[0]
    assert job.pipeline_name == PIPELINE and job.started and job.priority == 2
    assert [op.name for op in job.operators] == ["reader", "seg"]
    meta = job.metadata_
    first = pydicom.dcmread(ct200[0], stop_before_pixels=True)
    assert meta["instances"] == 200 and meta["called_ae"] == CALLED_AE and meta["calling_ae"] == "STORESCU"
    assert meta["study_uid"] == first.StudyInstanceUID and meta["series_uids"] == [first.SeriesInstanceUID]
    assert meta["patient_id"] == "SYNTH001" and meta["peer"].startswith("127.0.0.1:")
    for name, got in assert_job_input_is(config, job, ct200).items():
        assert pydicom.dcmread(got, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID == name[:-4]
    # The group leaves the receive area (removed right after the job commit); nothing half-written.
    wait_for(lambda: not list(config.dicom_dir.rglob("*.dcm")), timeout=10)
    assert not list(config.root.rglob("*.part"))


def test_group_by_series_makes_one_job_per_series(platform, tmp_path):
    from claractl.platform.dicom import DicomAdapter
    from claractl.platform.dicom.synthetic import make_ct_series
    from claractl.platform.store.models import AETitle
    config, store = platform
    with store.session() as s:
        s.get(AETitle, CALLED_AE).group_by = "0020,000E"
    study = "1.2.826.0.1.3680043.8.498.1"
    make_ct_series(tmp_path / "s", 3, size=32, study_uid=study, series_number=1)
    make_ct_series(tmp_path / "s", 4, size=32, study_uid=study, series_number=2)
    a = DicomAdapter(config, store, export_agent=False, close_interval=0.05)
    a.start()
    try:
        proc = dcmtk("storescu", "-aec", CALLED_AE, "+sd", "127.0.0.1", str(a.port), str(tmp_path / "s"))
        assert proc.returncode == 0, proc.stderr
        found = wait_for(lambda: len(jobs(store)) == 2 and jobs(store))
    finally:
        a.stop()
    assert sorted(j.metadata_["instances"] for j in found) == [3, 4]
    assert {j.metadata_["study_uid"] for j in found} == {study}
    assert found[0].payload_id != found[1].payload_id


def test_compressed_transfer_syntax_stored_as_received(adapter, platform, tmp_path):
    """A JPEG-LS / RLE file goes through storescu unchanged: no decode in the receive path."""
    from pydicom.uid import RLELossless
    from claractl.platform.dicom.synthetic import make_ct_series
    config, store = platform
    src = make_ct_series(tmp_path / "c", 2, size=64)
    for p in src:
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless, encoding_plugin="pydicom")
        ds.save_as(p, enforce_file_format=True)
    proc = dcmtk("storescu", "-aec", CALLED_AE, "-xr", "127.0.0.1", str(adapter.port), *map(str, src))
    assert proc.returncode == 0, proc.stderr
    job = wait_for(lambda: jobs(store))[0]
    for p in assert_job_input_is(config, job, src).values():
        assert pydicom.dcmread(p).file_meta.TransferSyntaxUID == RLELossless


def test_config_changes_apply_without_restart(adapter, platform):
    from claractl.platform.store.models import AETitle
    config, store = platform
    assert dcmtk("echoscu", "-aec", "NEWAE", "127.0.0.1", str(adapter.port)).returncode != 0
    with store.session() as s:
        s.add(AETitle(ae_title="NEWAE", pipelines=[PIPELINE]))
    wait_for(lambda: dcmtk("echoscu", "-aec", "NEWAE", "127.0.0.1", str(adapter.port)).returncode == 0, timeout=5)
    # The same A-ASSOCIATE-RQ bytes again: its negotiation is remembered, the access check is not.
    with store.session() as s:
        s.delete(s.get(AETitle, "NEWAE"))
    wait_for(lambda: dcmtk("echoscu", "-aec", "NEWAE", "127.0.0.1", str(adapter.port)).returncode != 0, timeout=5)


def test_stored_file_meta_is_valid_part10(adapter, platform, ct5):
    """Our hand-encoded header reads back with pydicom and names the sender."""
    from pydicom.filereader import read_file_meta_info
    config, store = platform
    proc = dcmtk("storescu", "-aec", CALLED_AE, "127.0.0.1", str(adapter.port), str(ct5[0]))
    assert proc.returncode == 0, proc.stderr
    wait_published(adapter)
    (stored,) = list(config.dicom_dir.rglob("*.dcm")) or [None]
    meta = read_file_meta_info(stored)
    sent = pydicom.dcmread(ct5[0], stop_before_pixels=True)
    assert meta.MediaStorageSOPClassUID == sent.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
    assert meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    assert meta.SourceApplicationEntityTitle == "STORESCU"
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    ds = pydicom.dcmread(stored)
    assert ds.pixel_array.shape == (64, 64) and ds.SOPInstanceUID == sent.SOPInstanceUID
