"""dicom-reader → (in-process model) → dicom-seg-writer on a held-out phantom study; the SEG is
decoded with highdicom and compared with the phantom's truth."""

import json

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from claractl_operators.ai_inference.windowing import segment_volume
from operator_helpers import dice, model_grid, run_operator
from phantom import LABELS

SNOMED = {"liver": "10200004", "spleen": "78961009", "kidney": "64033007"}


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, demo_study, demo_volumes, onnx_predict):
    """dicom-reader output and a label map predicted by the committed model (no server)."""
    ph, study, info = demo_study
    work = tmp_path_factory.mktemp("seg")
    uid = info["series_instance_uid"]
    img = nib.load(demo_volumes / f"{uid}.nii.gz")
    labels = segment_volume(np.asarray(img.dataobj), img.header.get_zooms(), onnx_predict, model_grid())
    (work / "labels").mkdir()
    nib.save(nib.Nifti1Image(labels, img.affine), work / "labels" / f"{uid}.nii.gz")
    return ph, study, info, work


def decode(seg_path, source_dir):
    """SEG → label volume in source slice order (via the referenced SOP instances)."""
    seg = hd.seg.segread(seg_path)
    sources = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in source_dir.glob("*.dcm"))}
    ordered = sorted(sources.values(), key=lambda ds: float(ds.ImagePositionPatient[2]))
    uids = [ds.SOPInstanceUID for ds in ordered]
    arr = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True,
                                            skip_overlap_checks=True)
    # (slices, rows, columns) with values = segment numbers → (columns, rows, slices)
    return seg, np.transpose(arr, (2, 1, 0))


def test_seg_references_source_and_matches_truth(predicted):
    ph, study, info, work = predicted
    run_operator("dicom_seg_writer", "--dicom", study / "dicom", "--labels", work / "labels", "--output", work / "out",
                 "--labels-names", ",".join(LABELS))
    seg_path = work / "out" / "seg.dcm"
    seg, decoded = decode(seg_path, study / "dicom")
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == info["study_instance_uid"]
    refs = seg.ReferencedSeriesSequence
    assert len(refs) == 1 and refs[0].SeriesInstanceUID == info["series_instance_uid"]
    assert len(refs[0].ReferencedInstanceSequence) == info["dicom_files"]
    names = {int(s.SegmentNumber): s.SegmentLabel for s in seg.SegmentSequence}
    assert sorted(names.values()) == ["kidney", "liver", "spleen"]
    for s in seg.SegmentSequence:
        code = s.SegmentedPropertyTypeCodeSequence[0]
        assert (code.CodingSchemeDesignator, code.CodeValue) == ("SCT", SNOMED[s.SegmentLabel])
        assert s.SegmentAlgorithmType == "AUTOMATIC"
    for number, name in names.items():
        d = dice((decoded == number).astype(np.uint8), (ph.labels == LABELS.index(name)).astype(np.uint8), 1)
        assert d >= 0.9, f"{name}: Dice {d:.3f}"


def test_names_come_from_the_inference_sidecar_when_not_given(predicted, tmp_path):
    ph, study, info, work = predicted
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    uid = info["series_instance_uid"]
    (labels_dir / f"{uid}.nii.gz").write_bytes((work / "labels" / f"{uid}.nii.gz").read_bytes())
    (labels_dir / f"{uid}.json").write_text(json.dumps({"labels": ["bg", "Liver", "organ-x", "kidney"]}))
    run_operator("dicom_seg_writer", "--dicom", study / "dicom", "--labels", labels_dir, "--output", tmp_path / "out")
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    by_label = {s.SegmentLabel: s.SegmentedPropertyTypeCodeSequence[0] for s in seg.SegmentSequence}
    assert set(by_label) == {"Liver", "organ-x", "kidney"}
    assert by_label["Liver"].CodeValue == "10200004"
    assert by_label["organ-x"].CodingSchemeDesignator == "99CLARACTL"


def test_label_map_on_another_grid_is_refused(predicted, tmp_path):
    ph, study, info, work = predicted
    (tmp_path / "labels").mkdir()
    bad = np.zeros((64, 64, 10), np.uint8)
    bad[10:20, 10:20, 2:5] = 1
    nib.save(nib.Nifti1Image(bad, np.eye(4)), tmp_path / "labels" / f"{info['series_instance_uid']}.nii.gz")
    proc = run_operator("dicom_seg_writer", "--dicom", study / "dicom", "--labels", tmp_path / "labels",
                        "--output", tmp_path / "out", check=False)
    assert proc.returncode == 1 and "is not the series grid" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "seg.dcm").exists()
