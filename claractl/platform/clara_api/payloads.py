"""Clara's Payloads service → claractl.platform.operations.payloads.

Names as Clara has them: Upload names are relative to the payload's `input/` folder; Details
lists every file relative to the payload root with a leading `/` (`/input/I101.dcm`,
`/operators/dicom-reader/…`); Download and Remove take such names (`/…`, `./…` or bare).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from claractl.platform.clara_api.answers import ok
from claractl.platform.clara_api.convert import ident, metadata_map
from claractl.platform.clara_api.protos import enum_value, message as M
from claractl.platform.operations import Context, Invalid
from claractl.platform.operations import payloads as ops
from claractl.platform.operations.ids import checked_id
from claractl.platform.store.models import PayloadType

CHUNK = 1024 * 1024          # download message size (gRPC's default limit is 4 MiB)


def payload_name(name: str) -> str:
    """A Clara blob name as a path relative to the payload root."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def clara_type(kind: str | None) -> int:
    return enum_value("PayloadType", "PAYLOAD_TYPE_REUSABLE" if kind == PayloadType.REUSABLE
                      else "PAYLOAD_TYPE_PIPELINE")


def _payload_id(request) -> str:
    return checked_id(request.payload_id.value, "payload")


class PayloadsService:
    SERVICE, FAMILY = "Payloads", "payload"

    def __init__(self, c: Context) -> None:
        self.c = c

    def Create(self, request, _context):
        p = ops.create_payload(self.c, metadata=dict(request.metadata))
        return M("PayloadsCreateResponse")(header=ok(), payload_id=ident(p["id"]), type=clara_type(p["type"]))

    def Upload(self, requests, _context):
        requests = iter(requests)
        first = next(requests, None)
        if first is None:
            raise Invalid("the upload holds no data", "payload")
        payload_id, name = first.payload_id.value, first.details.name

        def chunks():
            for req in itertools.chain([first], requests):
                if (req.payload_id.value or payload_id) != payload_id or (req.details.name or name) != name:
                    raise Invalid(f"one upload is one file: {name!r} of payload {payload_id}, "
                                  f"not {req.details.name!r}", "payload")
                yield req.data

        if not payload_name(name):
            raise Invalid("the uploaded file needs a name", "payload")
        written = ops.upload(self.c, checked_id(payload_id, "payload"), f"{ops.INPUT}/{payload_name(name)}", chunks())
        details = M("PayloadFileDetails")(name="/" + written["path"], size=written["size"], mode=first.details.mode)
        return M("PayloadsUploadResponse")(header=ok(), details=details)

    def Download(self, request, _context) -> Iterator:
        path = ops.file_to_read(self.c, _payload_id(request), payload_name(request.name))
        details = M("PayloadFileDetails")(name=request.name, size=path.stat().st_size, mode=path.stat().st_mode & 0o777)
        with open(path, "rb") as fh:
            data = fh.read(CHUNK)
            yield M("PayloadsDownloadResponse")(header=ok(), details=details, data=data)
            while data := fh.read(CHUNK):
                yield M("PayloadsDownloadResponse")(details=details, data=data)

    def Details(self, request, _context) -> Iterator:
        payload_id = _payload_id(request)
        info = ops.get_payload(self.c, payload_id)
        files = ops.list_files(self.c, payload_id, with_mode=True)
        common = dict(header=ok(), payload_id=ident(info["id"]), type=clara_type(info["type"]),
                      job_id=ident(info["job_id"]))
        for f in files or [None]:
            out = M("PayloadsDetailsResponse")(**common)
            if f is not None:
                out.file.CopyFrom(M("PayloadFileDetails")(name="/" + f["path"], size=f["size"], mode=f["mode"]))
            metadata_map(out.metadata, info["metadata"])
            yield out

    def Remove(self, request, _context):
        ops.remove_file(self.c, _payload_id(request), payload_name(request.name))
        return M("PayloadsRemoveResponse")(header=ok())

    def Delete(self, request, _context):
        ops.delete_payload(self.c, _payload_id(request))
        return M("PayloadsDeleteResponse")(header=ok())

    def AddMetadata(self, request, _context):
        out = M("PayloadsAddMetadataResponse")(header=ok(), payload_id=request.payload_id)
        metadata_map(out.metadata, ops.add_metadata(self.c, _payload_id(request), dict(request.metadata)))
        return out

    def RemoveMetadata(self, request, _context):
        out = M("PayloadsRemoveMetadataResponse")(header=ok(), payload_id=request.payload_id)
        metadata_map(out.metadata, ops.remove_metadata(self.c, _payload_id(request), list(request.keys)))
        return out
