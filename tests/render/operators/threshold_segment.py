"""Test stand-in for ai-inference (no model here): label map by HU thresholds on the same grid,
same file names, with the sidecar the real operator writes."""

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
src, dst = Path(args["--input"]), Path(args["--output"])
dst.mkdir(parents=True, exist_ok=True)
for path in sorted(src.glob("*.nii.gz")):
    img = nib.load(str(path))
    hu = np.asarray(img.dataobj)
    labels = np.zeros(hu.shape, np.uint8)
    labels[(hu > 60) & (hu < 200)] = 1        # the phantom's organ (90 HU)
    labels[hu >= 500] = 2                      # bone
    nib.save(nib.Nifti1Image(labels, img.affine), str(dst / path.name))
    stem = path.name[: -len(".nii.gz")]
    (dst / f"{stem}.json").write_text(json.dumps({"labels": ["background", "organ", "bone"]}))
    print(f"{path.name}: {int((labels == 1).sum())} organ voxels, {int((labels == 2).sum())} bone voxels")
