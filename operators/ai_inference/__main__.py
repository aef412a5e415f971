"""python -m claractl_operators.ai_inference --input DIR --output DIR --model NAME [--protocol http|grpc]"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from ..common.errors import OperatorError, run
from ..common.files import nifti_stem, read_nifti, volumes_in, voxel_spacing, write_json, write_nifti
from ..common.inference import TritonModel
from .grid import grid_from_model
from .windowing import segment_volume

log = logging.getLogger("ai-inference")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ai-inference", description="Segment NIfTI volumes with a model on a Triton-protocol server.")
    p.add_argument("--input", required=True, type=Path, help="directory of .nii.gz volumes (HU)")
    p.add_argument("--output", required=True, type=Path, help="directory for the label maps")
    p.add_argument("--model", required=True, help="model name on the inference service")
    p.add_argument("--protocol", choices=["http", "grpc"], help="default: HTTP if NVIDIA_TRITON_HTTPURI is set")
    p.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap, 0 ≤ x < 1")
    a = p.parse_args(argv)
    if not 0.0 <= a.overlap < 1.0:
        raise OperatorError("--overlap must be in [0, 1)")

    volumes = volumes_in(a.input)
    if not volumes:
        raise OperatorError(f"no .nii/.nii.gz volumes in {a.input}")
    model = TritonModel(a.model, a.protocol)
    grid = grid_from_model(model.info)
    log.info("model %s via %s://%s: %s", a.model, model.protocol, model.url, grid)
    a.output.mkdir(parents=True, exist_ok=True)
    try:
        for path in volumes:
            t0 = time.monotonic()
            data, affine = read_nifti(path)
            if data.ndim != 3:
                raise OperatorError(f"{path}: expected a 3-D volume, got shape {data.shape}")
            labels = segment_volume(np.asarray(data, dtype=np.float32), voxel_spacing(affine), model.predict, grid, a.overlap)
            stem = nifti_stem(path)
            write_nifti(a.output / f"{stem}.nii.gz", labels, affine)
            counts = np.bincount(labels.ravel(), minlength=grid.num_classes)
            write_json(a.output / f"{stem}.json", {
                "source": path.name, "model": a.model, "labels": model.info.labels,
                "voxels_per_class": [int(c) for c in counts],
            })
            log.info("%s: %s → labels %s in %.1f s", path.name, data.shape, counts.tolist(), time.monotonic() - t0)
    finally:
        model.close()
    return 0


if __name__ == "__main__":
    sys.exit(run("ai-inference", main))
