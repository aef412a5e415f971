import numpy as np
import pydicom
import nibabel as nib
from pydicom.uid import UID
from scipy import ndimage

from phantom import HU_KIDNEY, HU_LIVER, HU_SPLEEN, KIDNEY, LABELS, LIVER, SPLEEN, generate_phantom, write_study


def test_same_seed_same_phantom_and_seeds_differ(small_phantom):
    again = generate_phantom(seed=5, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))
    assert np.array_equal(again.hu, small_phantom.hu) and np.array_equal(again.labels, small_phantom.labels)
    other = generate_phantom(seed=6, shape=(128, 128, 48), spacing=(3.0, 3.0, 5.0))
    assert not np.array_equal(other.labels, small_phantom.labels)


def test_organs_have_realistic_hu_and_structure(small_phantom):
    ph = small_phantom
    assert ph.hu.dtype == np.int16 and ph.labels.dtype == np.uint8
    assert set(np.unique(ph.labels)) == set(range(len(LABELS)))
    for label, hu in ((LIVER, HU_LIVER), (SPLEEN, HU_SPLEEN), (KIDNEY, HU_KIDNEY)):
        assert abs(float(np.median(ph.hu[ph.labels == label])) - hu) <= 8
    # two kidneys, one each side of the midline, labelled as one class
    comps, n = ndimage.label(ph.labels == KIDNEY)
    assert n == 2
    xs = sorted(ndimage.center_of_mass(ph.labels == KIDNEY, comps, [1, 2]), key=lambda c: c[0])
    assert xs[0][0] < ph.hu.shape[0] / 2 < xs[1][0]
    # air outside, fat under the skin, bone distractors outside every organ label
    assert np.median(ph.hu[:3, :3, :]) < -950
    assert ((ph.hu > -140) & (ph.hu < -60) & (ph.labels == 0)).sum() > 1000
    assert ((ph.hu > 450) & (ph.labels == 0)).sum() > 500
    # noise: soft tissue is not a constant
    assert 8 < float(np.std(ph.hu[ph.labels == LIVER])) < 20


def test_same_anatomy_at_another_resolution():
    fine = generate_phantom(seed=2, shape=(192, 192, 60), spacing=(2.0, 2.0, 4.0))
    coarse = generate_phantom(seed=2, shape=(96, 96, 30), spacing=(4.0, 4.0, 8.0))
    vol_fine = (fine.labels == LIVER).sum() * 2 * 2 * 4
    vol_coarse = (coarse.labels == LIVER).sum() * 4 * 4 * 8
    assert abs(vol_fine - vol_coarse) / vol_fine < 0.05


def test_study_on_disk_is_a_valid_ct_series_with_truth(tmp_path, small_phantom):
    info = write_study(small_phantom, tmp_path)
    files = sorted((tmp_path / "dicom").glob("*.dcm"))
    assert len(files) == small_phantom.hu.shape[2] == info["dicom_files"]
    ds = pydicom.dcmread(files[0])
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.2" == ds.SOPClassUID
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
        assert UID(uid).is_valid
    assert (ds.Rows, ds.Columns) == (128, 128) and ds.BitsAllocated == 16 and ds.PixelRepresentation == 1
    assert [float(v) for v in ds.PixelSpacing] == [3.0, 3.0] and float(ds.SliceThickness) == 5.0
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert np.array_equal(hu, small_phantom.hu[:, :, 0].T)
    truth = nib.load(tmp_path / "truth.nii.gz")
    assert np.array_equal(np.asarray(truth.dataobj), small_phantom.labels)
    assert np.allclose(truth.affine, small_phantom.affine_ras)
