"""Segment names → coded concepts (SNOMED CT where known, a private scheme otherwise)."""

from __future__ import annotations

from pydicom.sr.coding import Code
from pydicom.sr.codedict import codes

ANATOMY = codes.SCT.AnatomicalStructure
KNOWN = {
    "liver": codes.SCT.Liver,
    "spleen": codes.SCT.Spleen,
    "kidney": codes.SCT.Kidney,
    "pancreas": codes.SCT.Pancreas,
    "gallbladder": codes.SCT.Gallbladder,
    "aorta": codes.SCT.Aorta,
}
PRIVATE_SCHEME = "99CLARACTL"  # "99" prefix: a locally defined coding scheme (PS3.16 8.2)


def property_codes(label: str) -> tuple[Code, Code]:
    """(SegmentedPropertyCategory, SegmentedPropertyType) for a segment label."""
    known = KNOWN.get(label.strip().lower())
    if known is not None:
        return ANATOMY, known
    return ANATOMY, Code(value=label[:16] or "unknown", scheme_designator=PRIVATE_SCHEME, meaning=label or "unknown")
