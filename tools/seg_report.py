"""Compare a DICOM SEG with the phantom's ground truth: which organs, and their Dice.

    python tools/seg_report.py SEG_FILE SOURCE_DICOM_DIR TRUTH_NIFTI [--min-dice 0.9]

Exit 1 when any organ of the truth is missing from the SEG or below --min-dice. The SEG is decoded
with highdicom against its referenced source instances, in slice order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom


def decode_seg(seg_path: Path, source_dir: Path) -> tuple[hd.seg.Segmentation, np.ndarray]:
    """SEG → label volume (columns, rows, slices) ordered like the source series along z."""
    seg = hd.seg.segread(seg_path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(source_dir.rglob("*")) if p.is_file()]
    ordered = sorted(sources, key=lambda ds: float(ds.ImagePositionPatient[2]))
    arr = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[ds.SOPInstanceUID for ds in ordered], combine_segments=True, skip_overlap_checks=True
    )
    return seg, np.transpose(arr, (2, 1, 0))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def report(seg_path: Path, source_dir: Path, truth_path: Path, labels: list[str]) -> dict[str, float]:
    seg, decoded = decode_seg(seg_path, source_dir)
    truth = np.asarray(nib.load(truth_path).dataobj)
    numbers = {s.SegmentLabel: int(s.SegmentNumber) for s in seg.SegmentSequence}
    return {
        name: dice(decoded == numbers[name], truth == index) if name in numbers else 0.0
        for index, name in enumerate(labels) if index > 0 and (truth == index).any()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seg", type=Path)
    p.add_argument("source", type=Path)
    p.add_argument("truth", type=Path)
    p.add_argument("--labels", default="background,liver,spleen,kidney")
    p.add_argument("--min-dice", type=float, default=0.9)
    a = p.parse_args(argv)
    scores = report(a.seg, a.source, a.truth, a.labels.split(","))
    for organ, value in scores.items():
        print(f"  {organ:8s} Dice {value:.3f}")
    print(json.dumps({"dice": scores}))
    return 0 if all(v >= a.min_dice for v in scores.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
