"""Compressed transfer syntaxes go through the SCP stored as received, never decoded.

Black box: a real encoder (dcmtk's dcmcjpeg / dcmcjpls / dcmcrle, or OpenJPEG through pydicom)
compresses synthetic CT slices, dcmtk's `storescu` proposes exactly that transfer syntax, and
the files that reach the job's input payload must carry it in their file meta with the dataset
bytes — and so the encapsulated pixel fragments — identical to what was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import generate_fragments
from pydicom.filereader import read_file_meta_info

from claractl.platform.dicom.synthetic import make_ct_series
from tests.dicom.conftest import CALLED_AE, assert_job_input_is, dcmtk, jobs, wait_for

SLICES = 2
SIZE = 64


def _dcmtk_encode(tool: str, *options: str) -> Callable[[Path, Path], None]:
    def encode(src: Path, dst: Path) -> None:
        dcmtk(tool, *options, str(src), str(dst), check=True)
    return encode


def _openjpeg_encode(syntax: str, **options) -> Callable[[Path, Path], None]:
    def encode(src: Path, dst: Path) -> None:
        ds = pydicom.dcmread(src)
        ds.compress(syntax, encoding_plugin="pylibjpeg", **options)
        ds.save_as(dst, enforce_file_format=True)
    return encode


def _bits(stored: int) -> Callable[[Path], None]:
    """Rewrite a 16-bit synthetic slice to `stored` bits (8 → 8-bit allocated, secondary capture)."""
    def prepare(path: Path) -> None:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        if stored == 8:
            # JPEG baseline is 8-bit only; CT requires 16 bits allocated, so this is an 8-bit
            # secondary-capture image (another storage SOP class the SCP must take too).
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage
            ds.BitsAllocated = 8
            ds.PixelData = (pixels >> 3).astype(np.uint8).tobytes()
            del ds.RescaleIntercept, ds.RescaleSlope
        else:
            ds.PixelData = (pixels & ((1 << stored) - 1)).astype(np.uint16).tobytes()
        ds.BitsStored = stored
        ds.HighBit = stored - 1
        ds.save_as(path, enforce_file_format=True)
    return prepare


@dataclass(frozen=True)
class Case:
    syntax: str
    encode: Callable[[Path, Path], None]
    prepare: Callable[[Path], None] | None = None


CASES = {
    "jpeg-baseline-8bit": Case(uid.JPEGBaseline8Bit, _dcmtk_encode("dcmcjpeg", "+eb"), _bits(8)),
    "jpeg-extended-12bit": Case(uid.JPEGExtended12Bit, _dcmtk_encode("dcmcjpeg", "+ee"), _bits(12)),
    "jpeg-lossless-p14": Case(uid.JPEGLossless, _dcmtk_encode("dcmcjpeg", "+el")),
    "jpeg-lossless-sv1": Case(uid.JPEGLosslessSV1, _dcmtk_encode("dcmcjpeg", "+e1")),
    "jpeg-ls-lossless": Case(uid.JPEGLSLossless, _dcmtk_encode("dcmcjpls", "+el")),
    "jpeg-ls-near-lossless": Case(uid.JPEGLSNearLossless, _dcmtk_encode("dcmcjpls", "+en", "+md", "3")),
    "jpeg2000-lossless": Case(uid.JPEG2000Lossless, _openjpeg_encode(uid.JPEG2000Lossless)),
    "jpeg2000-lossy": Case(uid.JPEG2000, _openjpeg_encode(uid.JPEG2000, j2k_cr=[10])),
    "rle-lossless": Case(uid.RLELossless, _dcmtk_encode("dcmcrle")),
}


def _single_syntax_profile(path: Path, sop_class: str, syntax: str) -> Path:
    """A storescu association profile (`-xf FILE only`) proposing `sop_class` in `syntax` alone."""
    path.write_text(
        "[[TransferSyntaxes]]\n[Compressed]\nTransferSyntax1 = " + syntax + "\n"
        "[[PresentationContexts]]\n[Contexts]\nPresentationContext1 = " + sop_class + "\\Compressed\n"
        "[[Profiles]]\n[only]\nPresentationContexts = Contexts\n")
    return path


def _fragments(path: Path) -> list[bytes]:
    ds = pydicom.dcmread(path)
    return list(generate_fragments(ds.PixelData))


@pytest.fixture(scope="module", params=sorted(CASES))
def compressed(request, tmp_path_factory) -> tuple[Case, list[Path]]:
    """(case, files) — SLICES synthetic CT slices compressed by the case's real encoder."""
    case = CASES[request.param]
    work = tmp_path_factory.mktemp(request.param)
    sent = []
    for src in make_ct_series(work / "raw", SLICES, size=SIZE):
        if case.prepare:
            case.prepare(src)
        dst = work / "sent" / src.name
        dst.parent.mkdir(exist_ok=True)
        case.encode(src, dst)
        sent.append(dst)
    return case, sent


def test_compressed_instance_is_stored_as_received(compressed, adapter, platform, tmp_path):
    case, sent = compressed
    config, store = platform
    for path in sent:   # the encoder really produced this syntax, encapsulated
        assert read_file_meta_info(path).TransferSyntaxUID == case.syntax
        assert len(_fragments(path)) >= 1
    # The association offers this one syntax only: storescu cannot fall back to an
    # uncompressed context and decode on its side, so Success means the SCP took it as is.
    sop_class = read_file_meta_info(sent[0]).MediaStorageSOPClassUID
    profile = _single_syntax_profile(tmp_path / "storescu.cfg", sop_class, case.syntax)
    proc = dcmtk("storescu", "-aec", CALLED_AE, "-xf", str(profile), "only", "-v",
                 "127.0.0.1", str(adapter.port), *map(str, sent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert log.count("Received Store Response (Success)") == SLICES, log[-3000:]
    job = wait_for(lambda: jobs(store))[0]
    stored = assert_job_input_is(config, job, sent)
    for path in sent:
        got = stored[f"{pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}.dcm"]
        assert read_file_meta_info(got).TransferSyntaxUID == case.syntax
        assert _fragments(got) == _fragments(path)   # pixel data never decoded / re-encoded
