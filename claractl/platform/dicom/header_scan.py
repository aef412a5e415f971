"""The fast path of the dataset check: walk the header bytes without building a pydicom Dataset.

pydicom's reader makes a Python object per element (~150 µs for a CT header, the largest cost
left on the receive path, see docs/dicom.md "Performance"). This walk checks the same structure
(known VR, lengths that fit, fixed-size VRs whole, sequences and items nested and closed, pixel
data ending the dataset) with struct only, and keeps the raw bytes of the few elements whose
values we read. It vouches for a dataset or declines: anything unusual (a VR it does not know,
an undefined length outside a sequence, encapsulated pixel data, a header longer than the bytes
at hand) raises Unclear, and pydicom's full check decides and words the refusal.
"""

from __future__ import annotations

import struct

from pydicom.charset import TEXT_VR_DELIMS, convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.valuerep import VR

PIXEL_DATA = 0x7FE00010
KNOWN_VRS = frozenset(vr.value for vr in VR)
ITEM_SIZE = {"US": 2, "SS": 2, "OW": 2, "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4, "AT": 4,
             "FD": 8, "OD": 8, "OV": 8, "SV": 8, "UV": 8}
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_DELIMITERS = (ITEM, ITEM_END, SEQUENCE_END)
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_KNOWN = frozenset(vr.encode() for vr in KNOWN_VRS)
_SPECIFIC_CHARACTER_SET = 0x00080005


def implicit_vr(tag) -> str:
    """The VR of an implicit VR element: the dictionary's (the first of 'US or SS'), else UN."""
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"     # private or unknown: any bytes are fine


class Unclear(Exception):
    """The walk cannot vouch for this dataset; the full check decides."""


class _Walk:
    def __init__(self, buf: bytes, implicit: bool, little: bool) -> None:
        e = "<" if little else ">"
        self.buf, self.implicit, self.little = buf, implicit, little
        self.tag_length = struct.Struct(e + "HHI")
        self.tag_vr_short = struct.Struct(e + "HH2sH")
        self.long_length = struct.Struct(e + "I")

    def element(self, pos: int, limit: int) -> tuple[int, str, int, int]:
        """(tag, VR, value length, value offset) of the element at `pos`."""
        if pos + 8 > limit:
            raise Unclear
        group, elem, length = self.tag_length.unpack_from(self.buf, pos)
        tag = group << 16 | elem
        if self.implicit or tag in _DELIMITERS:
            return tag, "" if tag in _DELIMITERS else implicit_vr(tag), length, pos + 8
        _, _, vr, length = self.tag_vr_short.unpack_from(self.buf, pos)
        if vr not in _KNOWN:
            raise Unclear
        vr = vr.decode()
        if vr in _LONG_LENGTH_VRS:
            if pos + 12 > limit:
                raise Unclear
            return tag, vr, self.long_length.unpack_from(self.buf, pos + 8)[0], pos + 12
        return tag, vr, length, pos + 8

    def elements(self, pos: int, end: int | None, limit: int, keep: dict | None = None) -> int:
        """The elements from `pos` to `end` (None: up to an item delimiter), all below `limit`;
        the offset after them. At the top level (`keep` given) the walk stops at pixel data and
        keeps the raw elements asked for."""
        while end is None or pos < end:
            tag, vr, length, start = self.element(pos, limit)
            if tag == ITEM_END and end is None and length == 0:
                return start
            if tag in _DELIMITERS:
                raise Unclear
            if keep is not None and tag == PIXEL_DATA:
                return pos
            if length == UNDEFINED:
                if vr != "SQ":
                    raise Unclear
                pos = self.items(start, None, limit)
                continue
            value_end = start + length
            size = ITEM_SIZE.get(vr)
            if value_end > limit or (size and length % size):
                raise Unclear
            if vr == "SQ":
                self.items(start, value_end, value_end)
            elif keep is not None and tag in keep:
                keep[tag] = (vr, bytes(self.buf[start:value_end]))
            pos = value_end
        if pos != end:
            raise Unclear
        return pos

    def items(self, pos: int, end: int | None, limit: int) -> int:
        """A sequence's items from `pos` to `end` (None: up to its delimiter); the offset after it."""
        while end is None or pos < end:
            tag, _, length, start = self.element(pos, limit)
            if tag == SEQUENCE_END and end is None and length == 0:
                return start
            if tag != ITEM:
                raise Unclear
            if length == UNDEFINED:
                pos = self.elements(start, None, limit)
            else:
                if start + length > limit:
                    raise Unclear
                pos = self.elements(start, start + length, start + length)
        if pos != end:
            raise Unclear
        return pos


def scan_header(prefix: bytes, length: int, transfer_syntax, wanted) -> dict[int, str]:
    """Check the dataset of `length` bytes whose first bytes are `prefix`; the values of the
    `wanted` elements as pydicom would give them ('' when absent or empty). Raises Unclear."""
    if transfer_syntax.is_deflated:
        raise Unclear
    walk = _Walk(prefix, transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian)
    keep = dict.fromkeys((*wanted, _SPECIFIC_CHARACTER_SET))
    limit = min(len(prefix), length)
    end = walk.elements(0, length, limit, keep)
    if end < length:      # at pixel data: it must have a defined length and end the dataset
        _, vr, value_length, start = walk.element(end, limit)
        if vr not in ("OB", "OW") or value_length == UNDEFINED or value_length % 2 or start + value_length != length:
            raise Unclear
    charset = keep.pop(_SPECIFIC_CHARACTER_SET)
    try:
        terms = [term.strip(" \0") for term in charset[1].decode("latin-1").split("\\")] if charset else None
        encodings = convert_encodings(terms)
    except Exception:
        raise Unclear from None
    return {tag: _text(*found, encodings) if found else "" for tag, found in keep.items()}


def _text(vr: str, raw: bytes, encodings: list[str]) -> str:
    """A single value as pydicom decodes it: a UID in its default (Latin-1), LO and SH in the
    dataset's character set; trailing NUL and spaces dropped."""
    if vr == "UI":
        value = raw.decode("latin-1")
    elif vr in ("LO", "SH"):
        value = decode_bytes(raw, encodings, TEXT_VR_DELIMS)
    else:
        raise Unclear             # other VRs have their own value classes
    if "\\" in value:
        raise Unclear             # several values
    return value.rstrip("\0 ")
