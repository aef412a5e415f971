"""Build one DICOM SEG from a label map on the grid of its source series."""

from __future__ import annotations

import numpy as np
import pydicom
import highdicom as hd
from pydicom.sr.codedict import codes

from ..common.errors import OperatorError
from ..dicom_reader.series import Geometry
from .codes import property_codes
from .labels import name_of


def check_grid(labels: np.ndarray, affine: np.ndarray, geo: Geometry, where: str) -> None:
    if labels.shape != geo.shape:
        raise OperatorError(f"{where}: label map shape {labels.shape} is not the series grid {geo.shape}")
    if not np.allclose(affine, geo.affine_ras, atol=1e-2):
        raise OperatorError(f"{where}: label map affine does not match the source series geometry")


def build_seg(labels: np.ndarray, geo: Geometry, names: list[str], model: str | None, series_number: int = 300) -> hd.seg.Segmentation | None:
    """Segments numbered 1..k for the label values present (> 0), in ascending value order."""
    present = [int(v) for v in np.unique(labels) if v > 0]
    if not present:
        return None
    sources = [pydicom.dcmread(s.path) for s in geo.slices]
    # frames in source order: slice k of the (columns, rows, slices) map is rows × columns
    frames = np.ascontiguousarray(np.transpose(labels, (2, 1, 0)))
    remapped = np.zeros(frames.shape, dtype=np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model or "claractl", family=codes.cid7162.ArtificialIntelligence, version=claractl_operators_version(),
    )
    descriptions = []
    for number, value in enumerate(present, start=1):
        remapped[frames == value] = number
        label = name_of(value, names)
        category, prop = property_codes(label)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=label, segmented_property_category=category,
            segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_id=f"{label}", tracking_uid=hd.UID(),
        ))
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=remapped, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="claractl",
        manufacturer_model_name=model or "claractl", software_versions=claractl_operators_version(),
        device_serial_number="0", content_label="SEGMENTATION", series_description=f"{model or 'AI'} segmentation",
    )


def claractl_operators_version() -> str:
    try:
        from importlib.metadata import version

        return version("claractl")
    except Exception:
        return "0.1.0"
