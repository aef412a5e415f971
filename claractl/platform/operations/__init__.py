"""What the platform does for each API call — one behaviour, two doors.

The HTTP API (`claractl.platform.api.routes`) and the Clara Platform gRPC API
(`claractl.platform.clara_api`) both call these functions; neither holds logic of its own beyond
turning requests into arguments and results (or `OperationError`s) into answers.

    from claractl.platform.operations import jobs
    job = jobs.create_job(context, pipeline="seg", input_payloads=[payload_id])

Every function takes a `Context` (config, store, inference hook, engine) first. Errors raise a
subclass of `OperationError` (`Invalid`, `NotFound`, `Conflict`, `Gone`); its message is meant
for the user and never holds a stack trace or a secret.
"""

from claractl.platform.operations.context import Context
from claractl.platform.operations.errors import BadRequest, Conflict, Gone, Invalid, NotFound, OperationError

__all__ = ["Context", "OperationError", "BadRequest", "Invalid", "NotFound", "Conflict", "Gone"]
