"""How errors reach a Clara client: a ResponseHeader with a negative code and a message (what
NVIDIA's client checks), never a stack trace.

Codes follow Clara's families (pipelines -0x1000…, jobs -0x2000…); claractl adds payloads
(-0x3000…) and models (-0x4000…). Within a family:

    -base          malformed id                  (Clara: "Invalid Pipeline ID" -0x1000)
    -(base+1)      not found                     (Clara: "Missing/Invalid Pipeline" -0x1001)
    -(base+2)      conflicts with the current state (already started, name taken, read-only …)
    -(base+3)      gone (deleted by retention or by request)
    -(base+0x100)  refused input (a bad definition, an unknown variable …)  (Clara: -0x1100)
    -1             the platform could not answer (store unavailable, internal error: logged)
"""

from __future__ import annotations

import grpc

from claractl.platform.clara_api.protos import message
from claractl.platform.operations.errors import OperationError

FAMILY = {"pipeline": 0x1000, "job": 0x2000, "operator": 0x2000, "payload": 0x3000, "file": 0x3000,
          "model": 0x4000, "catalog": 0x4000, "instance": 0x4000}
OFFSET = {"bad_request": 0, "not_found": 1, "conflict": 2, "gone": 3, "invalid": 0x100}
GRPC_STATUS = {"bad_request": grpc.StatusCode.INVALID_ARGUMENT, "invalid": grpc.StatusCode.INVALID_ARGUMENT,
               "not_found": grpc.StatusCode.NOT_FOUND, "gone": grpc.StatusCode.NOT_FOUND,
               "conflict": grpc.StatusCode.FAILED_PRECONDITION}


def ok():
    return message("ResponseHeader")(code=0)


def code_for(exc: OperationError, default_family: str) -> int:
    base = FAMILY.get(exc.what) or FAMILY.get(default_family, 0)
    if not base:
        return -1
    return -(base + OFFSET.get(exc.kind, 0x100))


def error_header(exc: OperationError, default_family: str):
    return message("ResponseHeader")(code=code_for(exc, default_family), messages=[exc.message])


def failure_header(text: str):
    return message("ResponseHeader")(code=-1, messages=[text])


def grpc_status(exc: OperationError) -> grpc.StatusCode:
    return GRPC_STATUS.get(exc.kind, grpc.StatusCode.INVALID_ARGUMENT)
