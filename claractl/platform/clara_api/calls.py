"""Turn a servicer object into gRPC handlers for its Clara service, with one guard around every
call: operation errors become the response header the client checks, anything unexpected is
logged here and answered with a short message (never a stack trace).

A servicer is a class with `SERVICE` ("Jobs"), `FAMILY` ("job": error code family) and one method
per RPC it serves, named as in the proto (`Create(request, context)`); RPCs it lacks answer
UNIMPLEMENTED. Methods named in `ABORT_ON_ERROR` end with a gRPC status instead of a header
(for calls whose client never looks at the header, e.g. Jobs.ReadLogs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from sqlalchemy.exc import OperationalError

from claractl.platform.clara_api.answers import error_header, failure_header, grpc_status
from claractl.platform.operations.errors import OperationError

log = logging.getLogger("claractl.clara_api")
STORE_DOWN = "the platform store is unavailable; retry"


def _failure_text(method: str, exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):          # the client ended a streamed request midway
        log.info("%s: the client ended the call", method)
        return "the call ended before its requests did"
    if isinstance(exc, OperationalError):
        log.error("%s: store error: %s", method, exc.orig)
        return STORE_DOWN
    log.exception("%s failed", method)
    return f"internal error in claractl while serving {method} ({type(exc).__name__}); see the platform log"


def _guard(servicer: Any, name: str, fn: Callable, response_cls: type, streaming: bool) -> Callable:
    family = servicer.FAMILY
    abort = name in getattr(servicer, "ABORT_ON_ERROR", ())
    full = f"{servicer.SERVICE}.{name}"

    def answer_error(exc: BaseException, context: grpc.ServicerContext):
        if isinstance(exc, OperationError):
            if abort:
                context.abort(grpc_status(exc), exc.message)
            return response_cls(header=error_header(exc, family))
        text = _failure_text(full, exc)
        if abort:
            context.abort(grpc.StatusCode.INTERNAL, text)
        return response_cls(header=failure_header(text))

    if streaming:
        def stream(request, context):
            try:
                yield from fn(request, context)
            except Exception as exc:  # noqa: BLE001 — every failure becomes an answer
                yield answer_error(exc, context)
        return stream

    def unary(request, context):
        try:
            return fn(request, context)
        except Exception as exc:  # noqa: BLE001
            return answer_error(exc, context)
    return unary


def generic_handler(servicer: Any, service_descriptor) -> grpc.GenericRpcHandler:
    handlers = {}
    for method in service_descriptor.methods:
        fn = getattr(servicer, method.name, None)
        if fn is None:
            continue
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        guarded = _guard(servicer, method.name, fn, response_cls, method.server_streaming)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(guarded, request_deserializer=request_cls.FromString,
                                     response_serializer=response_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(service_descriptor.full_name, handlers)
