"""Synthetic abdominal CT phantoms with ground truth, and a writer for them as a DICOM CT series.

A phantom is a body (soft-tissue elliptic cylinder with a subcutaneous fat layer, air outside),
organs as jittered ellipsoids in thin fat planes (liver, spleen, two kidneys in perirenal fat) and bone distractors
(spine with discs, ribs), plus Gaussian noise. Everything is drawn in patient coordinates (LPS,
millimetres) and point-sampled on the requested grid, so the same seed gives the same anatomy at
any resolution.

Arrays are indexed (column, row, slice) = (x, y, z), the NIfTI voxel order; the label values
follow blueprints/ct-segmentation/models/ct-organs/labels.txt.

    python tools/phantom.py --out DIR [--seed N] [--size 256 --slices 100 --spacing 1.5 --thickness 2.5]

writes DIR/dicom/*.dcm (one CT series), DIR/truth.nii.gz (label map), DIR/volume.nii.gz (HU).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABELS = ("background", "liver", "spleen", "kidney")
LIVER, SPLEEN, KIDNEY = 1, 2, 3

HU_AIR, HU_FAT, HU_TISSUE = -1000.0, -100.0, 40.0
HU_LIVER, HU_SPLEEN, HU_KIDNEY = 60.0, 50.0, 30.0
HU_PERIRENAL_FAT, HU_BONE, HU_DISC = -90.0, 700.0, 80.0
HU_ORGAN_FAT = -80.0  # thin fat plane around liver and spleen


@dataclass
class Phantom:
    """One synthetic CT: HU volume (int16), label map (uint8), voxel spacing and LPS origin."""

    hu: np.ndarray  # (nx, ny, nz) int16
    labels: np.ndarray  # (nx, ny, nz) uint8
    spacing: tuple[float, float, float]  # mm along x (columns), y (rows), z (slices)
    origin: tuple[float, float, float]  # LPS position of voxel (0, 0, 0)
    seed: int
    meta: dict = field(default_factory=dict)

    @property
    def affine_ras(self) -> np.ndarray:
        """Voxel → RAS mm (NIfTI convention): axis-aligned LPS grid with x and y negated."""
        lps = np.diag([*self.spacing, 1.0])
        lps[:3, 3] = self.origin
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _ellipsoid(x, y, z, centre, semi_axes, angle_deg=0.0):
    """Boolean mask of a z-axis-rotated ellipsoid (broadcast coordinate grids)."""
    cx, cy, cz = centre
    a, b, c = semi_axes
    t = np.deg2rad(angle_deg)
    dx, dy = x - cx, y - cy
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 + ((z - cz) / c) ** 2 <= 1.0


def generate_phantom(
    seed: int = 0,
    shape: tuple[int, int, int] = (256, 256, 100),
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5),
    noise_hu: float = 12.0,
) -> Phantom:
    """Build one phantom; `seed` drives all jitter (size, position, rotation) and the noise."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    sx, sy, sz = spacing
    origin = (-(nx - 1) * sx / 2.0, -(ny - 1) * sy / 2.0, -(nz - 1) * sz / 2.0)
    x = (origin[0] + np.arange(nx) * sx).astype(np.float32)[:, None, None]
    y = (origin[1] + np.arange(ny) * sy).astype(np.float32)[None, :, None]
    z = (origin[2] + np.arange(nz) * sz).astype(np.float32)[None, None, :]

    def jit(lo, hi):
        return float(rng.uniform(lo, hi))

    hu = np.full(shape, HU_AIR, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)

    # Body: outer ellipse (skin) filled with fat, inner ellipse with soft tissue; infinite in z.
    body_a, body_b = jit(145, 170), jit(100, 120)
    body_cx, body_cy = jit(-8, 8), jit(-8, 8)
    fat = jit(10, 22)
    outer = ((x - body_cx) / body_a) ** 2 + ((y - body_cy) / body_b) ** 2 <= 1.0
    inner = ((x - body_cx) / (body_a - fat)) ** 2 + ((y - body_cy) / (body_b - fat)) ** 2 <= 1.0
    outer = np.broadcast_to(outer, shape)
    inner = np.broadcast_to(inner, shape)
    hu[outer] = HU_FAT
    hu[inner] = HU_TISSUE

    def organ(mask, value, label):
        hu[mask] = value + jit(-5, 5)
        labels[mask] = label

    def fat_plane(mask):
        """Organs are outlined by a few mm of fat in CT (perihepatic, perisplenic, perirenal)."""
        hu[mask] = HU_ORGAN_FAT
        labels[mask] = 0

    # Liver on the patient's right (−x in LPS): right lobe plus a left-lobe extension over the midline.
    zl = jit(25, 55)
    liver_centre = (body_cx - jit(50, 65), body_cy - jit(0, 20), zl)
    right = (liver_centre, (jit(60, 78), jit(55, 70), jit(55, 72)), jit(-15, 15))
    left = ((liver_centre[0] + jit(50, 65), liver_centre[1] - jit(15, 30), zl + jit(5, 20)),
            (jit(38, 50), jit(28, 38), jit(28, 40)), jit(-20, 20))
    rim = jit(3, 6)
    fat_plane(_ellipsoid(x, y, z, right[0], tuple(a + rim for a in right[1]), right[2])
              | _ellipsoid(x, y, z, left[0], tuple(a + rim for a in left[1]), left[2]))
    organ(_ellipsoid(x, y, z, *right) | _ellipsoid(x, y, z, *left), HU_LIVER, LIVER)

    # Spleen posterior-left.
    centre = (body_cx + jit(80, 95), body_cy + jit(20, 40), jit(25, 55))
    semi, angle, rim = (jit(24, 32), jit(40, 52), jit(42, 58)), jit(-30, 0), jit(3, 6)
    fat_plane(_ellipsoid(x, y, z, centre, tuple(a + rim for a in semi), angle))
    organ(_ellipsoid(x, y, z, centre, semi, angle), HU_SPLEEN, SPLEEN)

    # Kidneys posterior, either side of the spine, each in a perirenal fat capsule.
    kidneys = np.zeros(shape, dtype=bool)
    zk = jit(-55, -30)
    for side in (-1.0, 1.0):
        centre = (body_cx + side * jit(58, 70), body_cy + jit(38, 52), zk + (-side) * jit(0, 12))
        semi = (jit(20, 26), jit(24, 32), jit(45, 58))
        angle = side * jit(10, 25)
        capsule = _ellipsoid(x, y, z, centre, tuple(s + 7 for s in semi), angle)
        hu[capsule] = HU_PERIRENAL_FAT
        labels[capsule] = 0
        kidneys |= _ellipsoid(x, y, z, centre, semi, angle)
    organ(kidneys, HU_KIDNEY, KIDNEY)

    # Bone distractors: vertebral bodies with discs, spinous processes, ribs in the upper half.
    spine_x, spine_y = body_cx + jit(-4, 4), body_cy + body_b - fat - jit(38, 48)
    vb_r = jit(15, 20)
    vertebra = ((x - spine_x) ** 2 + (y - spine_y) ** 2) <= vb_r**2
    process = (np.abs(x - spine_x) <= 5) & (y > spine_y + vb_r) & (y < spine_y + vb_r + 25)
    period, phase = jit(28, 34), jit(0, 30)
    disc = ((z - origin[2] + phase) % period) < 5.0
    bone_hu = HU_BONE + jit(-80, 80)
    spine = np.broadcast_to(vertebra | process, shape)
    hu[spine] = bone_hu
    labels[spine] = 0
    hu[spine & np.broadcast_to(disc & vertebra, shape)] = HU_DISC

    rib_shell = (((x - body_cx) / (body_a - fat - 6)) ** 2 + ((y - body_cy) / (body_b - fat - 6)) ** 2 <= 1.0) & ~(
        ((x - body_cx) / (body_a - fat - 14)) ** 2 + ((y - body_cy) / (body_b - fat - 14)) ** 2 <= 1.0
    )
    rib_period, rib_phase = jit(22, 28), jit(0, 20)
    rib_levels = (((z - origin[2] + rib_phase) % rib_period) < 9.0) & (z > zk + 10)
    ribs = np.broadcast_to(rib_shell, shape) & np.broadcast_to(rib_levels, shape)
    hu[ribs] = bone_hu
    labels[ribs] = 0

    hu += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    hu = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return Phantom(hu=hu, labels=labels, spacing=tuple(float(s) for s in spacing), origin=origin, seed=seed)


def write_dicom_series(
    phantom: Phantom,
    out_dir: str | Path,
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    patient_id: str = "PHANTOM",
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write the phantom as one axial CT series (one file per slice, Explicit VR Little Endian)."""
    from claractl.platform.dicom.synthetic import write_ct_series

    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    sx, sy, sz = phantom.spacing
    stored = np.rint((phantom.hu.astype(np.float64) - rescale_intercept) / rescale_slope)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError("rescale slope/intercept push stored values out of int16 range")
    stored = stored.astype(np.int16)
    series = {
        "PatientName": f"Phantom^{phantom.seed}", "PatientID": patient_id,
        "PatientBirthDate": "", "PatientSex": "O",
        "StudyDate": date, "SeriesDate": date, "ContentDate": date,
        "StudyTime": time, "SeriesTime": time, "ContentTime": time,
        "StudyID": "1", "AccessionNumber": f"PH{phantom.seed}", "ReferringPhysicianName": "",
        "Manufacturer": "claractl phantom", "SeriesNumber": 1,
        "SeriesDescription": f"Synthetic abdomen phantom seed {phantom.seed}",
        "PositionReferenceIndicator": "", "KVP": 120, "PatientPosition": "HFS",
        "PixelSpacing": [f"{sy:.6g}", f"{sx:.6g}"],  # row spacing (y), column spacing (x)
        "SliceThickness": f"{sz:.6g}",
        "RescaleSlope": f"{rescale_slope:g}", "RescaleIntercept": f"{rescale_intercept:g}", "RescaleType": "HU",
        "WindowCenter": 40, "WindowWidth": 400,
    }

    def axial(k: int) -> tuple[str, np.ndarray, dict]:
        position = (phantom.origin[0], phantom.origin[1], phantom.origin[2] + k * sz)
        attributes = {
            **series,
            "InstanceNumber": k + 1,
            "ImagePositionPatient": [f"{v:.4f}" for v in position],
            "SliceLocation": f"{position[2]:.4f}",
        }
        return f"CT{k + 1:04d}.dcm", stored[:, :, k].T, attributes  # rows × columns

    slices = (axial(k) for k in range(phantom.hu.shape[2]))
    return write_ct_series(out_dir, slices, study_uid=study_uid, series_uid=series_uid)


def write_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return Path(path)


def write_study(phantom: Phantom, out_dir: str | Path, **dicom_kwargs) -> dict:
    """DICOM series under out/dicom/, truth.nii.gz (labels), volume.nii.gz (HU), phantom.json."""
    out = Path(out_dir)
    files = write_dicom_series(phantom, out / "dicom", **dicom_kwargs)
    write_nifti(phantom.labels, phantom.affine_ras, out / "truth.nii.gz")
    write_nifti(phantom.hu, phantom.affine_ras, out / "volume.nii.gz")
    import pydicom

    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    info = {
        "seed": phantom.seed,
        "shape": list(phantom.hu.shape),
        "spacing": list(phantom.spacing),
        "labels": list(LABELS),
        "study_instance_uid": first.StudyInstanceUID,
        "series_instance_uid": first.SeriesInstanceUID,
        "dicom_files": len(files),
    }
    (out / "phantom.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a synthetic CT phantom study (DICOM + NIfTI truth).")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="in-plane matrix size")
    p.add_argument("--slices", type=int, default=100)
    p.add_argument("--spacing", type=float, default=1.5, help="in-plane pixel spacing, mm")
    p.add_argument("--thickness", type=float, default=2.5, help="slice spacing and thickness, mm")
    p.add_argument("--noise", type=float, default=12.0, help="Gaussian noise sigma, HU")
    a = p.parse_args(argv)
    ph = generate_phantom(a.seed, (a.size, a.size, a.slices), (a.spacing, a.spacing, a.thickness), a.noise)
    info = write_study(ph, a.out)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
