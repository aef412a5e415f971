"""Is a received dataset acceptable? Structure and identity, checked without touching pixel data.

    checked = check_dataset(fp, length, request, group_by_tag)   # or raises Refused(status, why)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.valuerep import VR
from pynetdicom.dsutils import decode

from claractl.platform.dicom.scp import StoreRequest

# C-STORE statuses (PS3.4 B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC210
PROCESSING_FAILURE = 0x0110

PIXEL_DATA = 0x7FE00010


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_complete(ds: Dataset, stream_len: int) -> None:
    """pydicom stops quietly at the end of a short stream; the last element must fit in it."""
    if not len(ds):
        raise ValueError("empty dataset")
    last = ds.get_item(max(ds.keys()))
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is not None and length not in (None, 0xFFFFFFFF) and tell + length > stream_len:
        raise ValueError(f"dataset truncated in element {last.tag} ({tell + length - stream_len} bytes missing)")


_KNOWN_VRS = frozenset(vr.value for vr in VR)
_ITEM_SIZE = {"US": 2, "SS": 2, "OW": 2, "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4, "AT": 4,
              "FD": 8, "OD": 8, "OV": 8, "SV": 8, "UV": 8}


def check_structure(ds: Dataset) -> None:
    """Every element has a known VR, a length that fits its VR and the stream, and sequences nest.

    Works on pydicom's raw elements without converting values (~10 µs per element in pydicom 3,
    most of a receive's CPU time otherwise); sequences are opened and checked item by item.
    Raises ValueError on the first problem.
    """
    for tag in ds.keys():
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement):
            vr = elem.VR or _implicit_vr(elem.tag)
            if vr not in _KNOWN_VRS:
                raise ValueError(f"element {elem.tag} has an unknown VR {vr!r}")
            if elem.length != 0xFFFFFFFF and elem.value is not None and len(elem.value) != elem.length:
                raise ValueError(f"element {elem.tag} is shorter than its length {elem.length}")
            size = _ITEM_SIZE.get(vr)
            if size and elem.length != 0xFFFFFFFF and elem.length % size:
                raise ValueError(f"element {elem.tag} ({vr}) has length {elem.length}, not a multiple of {size}")
            if vr != "SQ":
                continue
        elif elem.VR != "SQ":
            continue
        for item in ds[tag].value:     # converts this sequence only; its items stay raw
            check_structure(item)


def _implicit_vr(tag) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"     # private or unknown: any bytes are fine


def mismatch(ds: Dataset, request: StoreRequest) -> str:
    """Why the dataset does not match its C-STORE request ('' when it does)."""
    if str(ds.get("SOPClassUID", "")) != request.sop_class_uid:
        return "SOP Class UID missing or not the one in the request"
    if str(ds.get("SOPInstanceUID", "")) != request.sop_instance_uid:
        return "SOP Instance UID missing or not the one in the request"
    return ""


@dataclass(frozen=True)
class Checked:
    """What the header tells about a received instance."""
    group_key: str
    info: tuple[str, str, str, str]    # SOP Instance UID, patient ID, study UID, series UID


def _read_values(ds: Dataset, request: StoreRequest, group_by: int) -> Checked:
    why = mismatch(ds, request)
    if why:
        raise Refused(DATASET_MISMATCH, why)
    try:    # the few values we use are converted here, and must convert
        key_elem = ds.get(group_by)
        key = str(key_elem.value).strip() if key_elem is not None and key_elem.value else ""
        info = (request.sop_instance_uid, str(ds.get("PatientID", "") or ""),
                str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or ""))
    except Exception as exc:
        raise Refused(CANNOT_UNDERSTAND, f"dataset cannot be parsed: {exc}") from None
    if not key:
        raise Refused(DATASET_MISMATCH, f"no group-by tag {group_by:08X}")
    return Checked(key, info)


def _at_pixel_data(tag, vr, length) -> bool:
    return tag == PIXEL_DATA


def check_dataset(fp: BinaryIO, length: int, request: StoreRequest, group_by: int) -> Checked:
    """Check the `length` bytes of a dataset readable from `fp` (positioned at its start).

    Refused with the C-STORE status if it is not acceptable. Pixel data is not read when it
    has a defined length: its header must say it ends exactly where the dataset does (or the
    elements after it are read and checked too).
    """
    ts = request.transfer_syntax
    try:
        if ts.is_deflated:
            ds = decode(BytesIO(fp.read(length)), False, True, True)
            check_structure(ds)
        else:
            ds = read_dataset(fp, ts.is_implicit_VR, ts.is_little_endian, stop_when=_at_pixel_data)
            check_structure(ds)
            if fp.tell() < length:
                _check_from_pixel_data(fp, length, ts)
            else:
                check_complete(ds, length)
    except Exception as exc:
        raise Refused(CANNOT_UNDERSTAND, f"dataset cannot be parsed: {exc}") from None
    return _read_values(ds, request, group_by)


def _check_from_pixel_data(fp: BinaryIO, length: int, ts) -> None:
    """The pixel data element and anything after it: skipped when its header shows it ends the
    dataset exactly, else read and checked like the rest."""
    start = fp.tell()
    endian = "<" if ts.is_little_endian else ">"
    if ts.is_implicit_VR:
        header = fp.read(8)
        value_length = struct.unpack(endian + "I", header[4:8])[0] if len(header) == 8 else None
        vr_ok = True
    else:
        header = fp.read(12)
        value_length = struct.unpack(endian + "I", header[8:12])[0] if len(header) == 12 else None
        vr_ok = header[4:6] in (b"OB", b"OW")
    if (vr_ok and value_length is not None and value_length != 0xFFFFFFFF and value_length % 2 == 0
            and start + len(header) + value_length == length):
        return
    fp.seek(start)                    # unusual: encapsulated, trailing elements, or broken
    rest = fp.read(length - start)
    ds = read_dataset(BytesIO(rest), ts.is_implicit_VR, ts.is_little_endian)
    check_complete(ds, len(rest))
    check_structure(ds)
