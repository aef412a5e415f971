import json
import random
import shutil

import nibabel as nib
import numpy as np
import pydicom
from scipy import ndimage

from operator_helpers import run_operator
from phantom import LIVER, write_dicom_series


def read_output(out_dir):
    volumes = sorted(out_dir.glob("*.nii.gz"))
    assert len(volumes) == 1
    img = nib.load(volumes[0])
    meta = json.loads(volumes[0].with_name(volumes[0].name.replace(".nii.gz", ".json")).read_text())
    return img, meta, volumes[0]


def test_series_becomes_volume_with_geometry_and_hu(tmp_path, small_series, small_phantom):
    run_operator("dicom_reader", "--input", small_series, "--output", tmp_path)
    img, meta, path = read_output(tmp_path)
    uid = pydicom.dcmread(next(small_series.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID
    assert path.name == f"{uid}.nii.gz" and meta["SeriesInstanceUID"] == uid
    data = np.asarray(img.dataobj)
    assert data.shape == small_phantom.hu.shape == tuple(meta["shape"])
    assert np.array_equal(data, small_phantom.hu)
    assert img.header.get_zooms() == (3.0, 3.0, 5.0) and meta["spacing_mm"] == [3.0, 3.0, 5.0]
    assert np.allclose(img.affine, small_phantom.affine_ras)
    assert len(meta["sop_instance_uids"]) == 48 and meta["Modality"] == "CT"


def test_orientation_is_ras(tmp_path, small_series, small_phantom):
    """The liver is on the patient's right (+x in RAS), the spine posterior (−y), slices go up (+z)."""
    run_operator("dicom_reader", "--input", small_series, "--output", tmp_path)
    img, _, _ = read_output(tmp_path)
    liver = np.array([*ndimage.center_of_mass(small_phantom.labels == LIVER), 1.0])
    bone = np.asarray(img.dataobj) > 450
    bone[:56] = bone[72:] = False  # the vertebrae sit on the midline; ribs lie lateral
    spine = np.array([*ndimage.center_of_mass(bone), 1.0])
    assert (img.affine @ liver)[0] > 20
    assert (img.affine @ spine)[1] < -40
    assert img.affine[2, 2] > 0
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")  # voxel axes run toward patient left, posterior, up


def test_shuffled_nested_files_and_junk_give_the_same_volume(tmp_path, small_series, small_phantom):
    src = tmp_path / "in"
    files = sorted(small_series.glob("*.dcm"))
    rng = random.Random(1)
    rng.shuffle(files)
    for i, f in enumerate(files):
        target = src / f"sub{i % 3}" / f"{rng.getrandbits(32):08x}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    (src / "notes.txt").write_text("not dicom")
    (src / "sub0" / "empty.dcm").write_bytes(b"")
    out = tmp_path / "out"
    run_operator("dicom_reader", "--input", src, "--output", out)
    img, meta, _ = read_output(out)
    assert np.array_equal(np.asarray(img.dataobj), small_phantom.hu)
    assert np.allclose(img.affine, small_phantom.affine_ras)
    assert len(meta["files"]) == 48


def test_non_unit_rescale_is_applied(tmp_path, small_phantom):
    series = tmp_path / "series"
    write_dicom_series(small_phantom, series, rescale_slope=0.5, rescale_intercept=-1024)
    raw = pydicom.dcmread(next(series.glob("*.dcm")))
    assert raw.pixel_array.max() > 2048  # stored values really are scaled
    run_operator("dicom_reader", "--input", series, "--output", tmp_path / "out")
    img, _, _ = read_output(tmp_path / "out")
    assert np.array_equal(np.asarray(img.dataobj), small_phantom.hu)


def test_fractional_rescale_gives_float_volume(tmp_path, small_phantom):
    series = tmp_path / "series"
    write_dicom_series(small_phantom, series, rescale_slope=0.25, rescale_intercept=-1000.5)
    run_operator("dicom_reader", "--input", series, "--output", tmp_path / "out")
    img, meta, _ = read_output(tmp_path / "out")
    assert meta["dtype"] == "float32"
    assert np.abs(np.asarray(img.dataobj) - small_phantom.hu).max() <= 0.125 + 1e-4


def test_two_series_give_two_volumes(tmp_path, small_phantom):
    write_dicom_series(small_phantom, tmp_path / "in" / "a")
    write_dicom_series(small_phantom, tmp_path / "in" / "b")
    run_operator("dicom_reader", "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert len(list((tmp_path / "out").glob("*.nii.gz"))) == 2


def test_no_dicom_is_a_clear_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("hello")
    proc = run_operator("dicom_reader", "--input", tmp_path / "in", "--output", tmp_path / "out", check=False)
    assert proc.returncode == 1
    assert "no DICOM image series" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
