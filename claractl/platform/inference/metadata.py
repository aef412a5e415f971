"""Protocol-neutral answers (server metadata, model metadata) shared by the HTTP and gRPC fronts."""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2 as mc

import claractl
from claractl.platform.inference.datatypes import wire_name
from claractl.platform.inference.runtime import LoadedModel

SERVER_NAME = "claractl-inference"
EXTENSIONS = ["binary_tensor_data", "model_configuration", "model_repository"]


def server_metadata() -> dict:
    return {"name": SERVER_NAME, "version": claractl.__version__, "extensions": list(EXTENSIONS)}


def model_metadata(loaded: LoadedModel, version: int | None = None) -> dict:
    info = loaded.info
    batch = [-1] if info.config.max_batch_size > 0 else []

    def tensors(items):
        return [{"name": t.name, "datatype": wire_name(mc.DataType.Name(t.data_type)), "shape": batch + list(t.dims)}
                for t in items]

    return {
        "name": info.name,
        "versions": [str(v) for v in (info.versions if version is None else [version])],
        "platform": info.config.platform or "onnxruntime_onnx",
        "inputs": tensors(info.config.input),
        "outputs": tensors(info.config.output),
    }
