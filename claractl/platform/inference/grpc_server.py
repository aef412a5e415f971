"""Triton's gRPC protocol: `inference.GRPCInferenceService` from tritonclient's generated code."""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from claractl.platform.inference.errors import InferenceError, invalid
from claractl.platform.inference.metadata import model_metadata, server_metadata
from claractl.platform.inference.runtime import ModelRegistry, Tensor, tensor_from_bytes, tensor_from_list

# InferTensorContents field holding each datatype's typed (non-raw) values.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
    "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents",
}
_MAX_MESSAGE = 2**31 - 1          # as Triton: no practical limit on tensor size


def _param_value(p: pb.InferParameter):
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


class _InferResponse:
    """ModelInferResponse without its raw_output_contents, plus the output arrays.

    protobuf (upb) copies a multi-MB bytes field several times when serialising a fresh
    message (~50 ms for 4 MB); appending the repeated `raw_output_contents` field (6) by hand
    after the small message is the same wire format with one copy."""

    def __init__(self, message: pb.ModelInferResponse, arrays: list[np.ndarray]) -> None:
        self.message = message
        self.arrays = arrays


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


_RAW_OUTPUT_TAG = bytes([(6 << 3) | 2])        # field 6, length-delimited


def _serialize_infer_response(response) -> bytes:
    if not isinstance(response, _InferResponse):
        return response.SerializeToString()
    parts = [response.message.SerializeToString()]
    for array in response.arrays:
        parts += [_RAW_OUTPUT_TAG, _varint(array.nbytes), memoryview(array).cast("B")]
    return b"".join(parts)


class _HandlerCapture:
    """Stands in for a grpc.Server to capture the generated method handlers."""

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self.service, self.handlers = service, dict(handlers)


def _add_servicer(servicer, server) -> None:
    capture = _HandlerCapture()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, capture)
    handlers = capture.handlers
    handlers["ModelInfer"] = grpc.unary_unary_rpc_method_handler(
        servicer.ModelInfer, request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=_serialize_infer_response)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)


class TritonServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, registry: ModelRegistry, is_ready=lambda: True) -> None:
        self.registry = registry
        self.is_ready = is_ready

    def _abort(self, context, e: InferenceError):
        context.abort(e.grpc_code, e.message)

    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=bool(self.is_ready()))

    def ModelReady(self, request, context):
        return pb.ModelReadyResponse(ready=self.registry.is_ready(request.name, request.version))

    def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(**server_metadata())

    def ModelMetadata(self, request, context):
        try:
            loaded, _ = self.registry.get(request.name, request.version)
        except InferenceError as e:
            return self._abort(context, e)
        meta = model_metadata(loaded, int(request.version) if request.version else None)
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[pb.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]],
        )

    def ModelConfig(self, request, context):
        try:
            loaded, _ = self.registry.get(request.name, request.version)
        except InferenceError as e:
            return self._abort(context, e)
        return pb.ModelConfigResponse(config=loaded.info.config)

    def ModelInfer(self, request, context):
        try:
            tensors = self._inputs(request)
            requested = [o.name for o in request.outputs]
            version, outputs = self.registry.infer(request.model_name, request.model_version, tensors, requested or None)
        except InferenceError as e:
            return self._abort(context, e)
        response = pb.ModelInferResponse(model_name=request.model_name, model_version=str(version), id=request.id)
        for t in outputs:
            response.outputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
        return _InferResponse(response, [np.ascontiguousarray(t.data) for t in outputs])

    def _inputs(self, request) -> list[Tensor]:
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise invalid(f"expected {len(request.inputs)} raw_input_contents, got {len(raw)}")
        tensors = []
        for i, item in enumerate(request.inputs):
            shape = list(item.shape)
            if raw:
                tensors.append(tensor_from_bytes(item.name, item.datatype, shape, raw[i]))
            else:
                field = _CONTENTS_FIELD.get(item.datatype)
                if field is None:
                    raise InferenceError("unsupported", f"input '{item.name}': send datatype '{item.datatype}' "
                                                        "as raw_input_contents")
                tensors.append(tensor_from_list(item.name, item.datatype, shape, list(getattr(item.contents, field))))
        return tensors

    def RepositoryIndex(self, request, context):
        rows = self.registry.index(ready_only=request.ready)
        return pb.RepositoryIndexResponse(models=[pb.RepositoryIndexResponse.ModelIndex(**r) for r in rows])

    def RepositoryModelLoad(self, request, context):
        try:
            params = {k: _param_value(v) for k, v in request.parameters.items()}
            self.registry.load_request(request.model_name, params)
        except InferenceError as e:
            return self._abort(context, e)
        return pb.RepositoryModelLoadResponse()

    def RepositoryModelUnload(self, request, context):
        try:
            self.registry.unload(request.model_name)
        except InferenceError as e:
            return self._abort(context, e)
        return pb.RepositoryModelUnloadResponse()


def create_grpc_server(registry: ModelRegistry, address: str, is_ready=lambda: True, workers: int = 16):
    """Bind and start; returns (server, bound port). Raises OSError when the address is taken."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="triton-grpc"),
        options=[("grpc.max_send_message_length", _MAX_MESSAGE), ("grpc.max_receive_message_length", _MAX_MESSAGE),
                 ("grpc.so_reuseport", 0)],
    )
    _add_servicer(TritonServicer(registry, is_ready), server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        raise OSError(f"inference gRPC server could not listen on {address} (port in use?)") from None
    if port == 0:
        raise OSError(f"inference gRPC server could not listen on {address} (port in use?)")
    server.start()
    return server, port
