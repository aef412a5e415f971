"""The fast header walk (header_scan.py) against pydicom's full check, on the same bytes.

It must vouch for ordinary instances (or the receive path loses its speed), give the values
pydicom gives, and never vouch for a dataset the full check refuses: here checked on real
encodings (explicit/implicit little endian, explicit big endian, nested sequences of both
length kinds, a character set, private tags, a highdicom SEG) and on 600 damaged copies.
"""

from __future__ import annotations

import io
import random

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from claractl.platform.dicom.dataset_check import Refused, check_dataset
from claractl.platform.dicom.header_scan import Unclear, scan_header
from claractl.platform.dicom.scp import StoreRequest
from claractl.platform.dicom.synthetic import make_ct_series

STUDY, SERIES = 0x0020000D, 0x0020000E
WANTED = {0x00080016, 0x00080018, 0x00100020, STUDY, SERIES}


def _encode(ds: Dataset, syntax: str) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = syntax != ExplicitVRBigEndian
    fp.is_implicit_VR = syntax == ImplicitVRLittleEndian
    write_dataset(fp, ds)
    return fp.getvalue()


def _request(ds: Dataset, syntax: str) -> StoreRequest:
    return StoreRequest(1, str(ds.SOPClassUID), str(ds.SOPInstanceUID), UID(syntax))


def _ct(tmp_path) -> Dataset:
    return pydicom.dcmread(make_ct_series(tmp_path, 1, size=32)[0])


def _rich_ct(tmp_path) -> Dataset:
    """Sequences nested two deep (pydicom writes defined lengths; the test below rewrites one
    with undefined lengths), a Latin-1 patient ID, private elements."""
    ds = _ct(tmp_path)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = "MÜLLER-é42"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "T-D0050", "SRT", "Tissue"
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = pydicom.uid.generate_uid()
    item.PurposeOfReferenceCodeSequence = Sequence([code])
    ds.ReferencedImageSequence = Sequence([item, item])
    ds.add_new(0x00091010, "LO", "VENDOR PRIVATE")
    ds.add_new(0x00091011, "UN", b"\x01\x02\x03\x04")
    return ds


def _seg(tmp_path) -> Dataset:
    sources = [pydicom.dcmread(p) for p in make_ct_series(tmp_path, 3, size=16)]
    mask = np.zeros((3, 16, 16), dtype=np.uint8)
    mask[1, 4:9, 4:9] = 1
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="liver",
        segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical structure"),
        segmented_property_type=hd.sr.CodedConcept("10200004", "SCT", "Liver"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=hd.UID(), series_number=99,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="claractl",
        manufacturer_model_name="test", software_versions="1", device_serial_number="1")
    return seg


CASES = [
    ("ct explicit LE", _ct, ExplicitVRLittleEndian),
    ("ct implicit LE", _ct, ImplicitVRLittleEndian),
    ("ct explicit BE", _ct, ExplicitVRBigEndian),
    ("rich explicit LE", _rich_ct, ExplicitVRLittleEndian),
    ("rich implicit LE", _rich_ct, ImplicitVRLittleEndian),
    ("rich explicit BE", _rich_ct, ExplicitVRBigEndian),
    ("seg explicit LE", _seg, ExplicitVRLittleEndian),
]


def _full(data: bytes, request: StoreRequest, group_by: int):
    """pydicom's verdict: Checked, or the Refused status."""
    try:
        return check_dataset(io.BufferedReader(io.BytesIO(data)), len(data), request, group_by)
    except Refused as exc:
        return exc.status


@pytest.mark.parametrize("name, make, syntax", CASES, ids=[c[0] for c in CASES])
def test_vouches_for_real_encodings_with_pydicoms_values(tmp_path, name, make, syntax):
    ds = make(tmp_path)
    data = _encode(ds, syntax)
    request = _request(ds, syntax)
    values = scan_header(data, len(data), request.transfer_syntax, WANTED)       # no Unclear
    assert values[0x00100020] == str(ds.PatientID)
    assert values[STUDY] == ds.StudyInstanceUID and values[SERIES] == ds.SeriesInstanceUID
    for group_by in (STUDY, SERIES):
        fast = check_dataset(None, len(data), request, group_by, prefix=data)    # never touches the file
        assert fast == _full(data, request, group_by)


def _undefined_lengths(data: bytes, sequence_tag: bytes) -> bytes:
    """The explicit VR LE sequence starting with `sequence_tag`, and its items, re-encoded with
    undefined lengths and delimiters, as many modalities write them."""
    start = data.index(sequence_tag + b"SQ\x00\x00")
    length = int.from_bytes(data[start + 8:start + 12], "little")
    body, pos, items = data[start + 12:start + 12 + length], 0, b""
    while pos < len(body):
        assert body[pos:pos + 4] == b"\xfe\xff\x00\xe0"
        item_length = int.from_bytes(body[pos + 4:pos + 8], "little")
        items += b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + body[pos + 8:pos + 8 + item_length] + b"\xfe\xff\x0d\xe0" + bytes(4)
        pos += 8 + item_length
    return (data[:start + 8] + b"\xff\xff\xff\xff" + items + b"\xfe\xff\xdd\xe0" + bytes(4)
            + data[start + 12 + length:])


def test_undefined_length_sequences_and_items_are_walked_too(tmp_path):
    ds = _rich_ct(tmp_path)
    data = _undefined_lengths(_encode(ds, ExplicitVRLittleEndian), b"\x08\x00\x40\x11")   # (0008,1140)
    assert b"\xfe\xff\xdd\xe0" in data
    request = _request(ds, ExplicitVRLittleEndian)
    scan_header(data, len(data), request.transfer_syntax, WANTED)                      # no Unclear
    assert check_dataset(None, len(data), request, STUDY, prefix=data) == _full(data, request, STUDY)
    assert pydicom.dcmread(io.BytesIO(data), force=True).ReferencedImageSequence[1].ReferencedSOPClassUID \
        == ds.SOPClassUID                                                          # the rewrite is valid DICOM


def test_declines_what_it_cannot_vouch_for(tmp_path):
    ds = _ct(tmp_path)
    data = _encode(ds, ExplicitVRLittleEndian)
    request = _request(ds, ExplicitVRLittleEndian)
    ts = request.transfer_syntax
    with pytest.raises(Unclear):                     # the header is longer than the bytes at hand
        scan_header(data[:200], len(data), ts, WANTED)
    with pytest.raises(Unclear):                     # pixel data does not end the dataset
        scan_header(data + b"\xe0\x7f\x20\x00OW\x00\x00\x00\x00\x00\x00", len(data) + 12, ts, WANTED)
    with pytest.raises(Unclear):                     # deflated: pydicom inflates
        scan_header(data, len(data), UID("1.2.840.10008.1.2.1.99"), WANTED)
    rows = data.index(b"\x28\x00\x10\x00US\x02\x00")   # Rows, US: 3 bytes are not a whole value
    odd = data[:rows + 6] + b"\x03\x00" + data[rows + 8:rows + 10] + b"\x00" + data[rows + 10:]
    with pytest.raises(Unclear):
        scan_header(odd, len(odd), ts, WANTED)
    assert _full(odd, request, STUDY) == 0xC210


@pytest.mark.filterwarnings("ignore::UserWarning")      # pydicom's, on the damaged copies
def test_never_vouches_for_a_damaged_dataset_the_full_check_refuses(tmp_path):
    rng = random.Random(4)
    originals = []
    for _, make, syntax in CASES:
        ds = make(tmp_path / f"{len(originals)}")
        originals.append((_encode(ds, syntax), _request(ds, syntax)))
    vouched = refused_by_full = 0
    for i in range(600):
        data, request = originals[i % len(originals)]
        damaged = bytearray(data)
        header_end = min(len(damaged), 4000)
        kind = i % 3
        if kind == 0:                                          # flip bytes in the header
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(header_end)] ^= 1 << rng.randrange(8)
        elif kind == 1:                                        # cut the dataset short
            del damaged[rng.randrange(1, len(damaged)):]
        else:                                                  # a length field made wrong
            pos = rng.randrange(0, header_end - 4)
            damaged[pos:pos + 2] = rng.randrange(0, 65536).to_bytes(2, "little")
        damaged = bytes(damaged)
        full = _full(damaged, request, STUDY)
        try:
            fast = check_dataset(None, len(damaged), request, STUDY, prefix=damaged) \
                if _vouches(damaged, request) else None
        except Refused as exc:
            fast = exc.status
        if fast is not None:
            vouched += 1
            assert fast == full, f"case {i}: fast {fast!r} vs full {full!r}"
        refused_by_full += not hasattr(full, "group_key")
    assert vouched > 100 and refused_by_full > 100        # both kinds were really exercised


def _vouches(data: bytes, request: StoreRequest) -> bool:
    try:
        scan_header(data, len(data), request.transfer_syntax, WANTED)
        return True
    except Unclear:
        return False
