"""Tensor data types: Triton config names (TYPE_FP32), wire names (FP32), numpy and ONNX types."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

# config enum name → (wire name, numpy dtype or None for BYTES, ONNX element type)
_TABLE: dict[str, tuple[str, object, int]] = {
    "TYPE_BOOL": ("BOOL", np.bool_, TensorProto.BOOL),
    "TYPE_UINT8": ("UINT8", np.uint8, TensorProto.UINT8),
    "TYPE_UINT16": ("UINT16", np.uint16, TensorProto.UINT16),
    "TYPE_UINT32": ("UINT32", np.uint32, TensorProto.UINT32),
    "TYPE_UINT64": ("UINT64", np.uint64, TensorProto.UINT64),
    "TYPE_INT8": ("INT8", np.int8, TensorProto.INT8),
    "TYPE_INT16": ("INT16", np.int16, TensorProto.INT16),
    "TYPE_INT32": ("INT32", np.int32, TensorProto.INT32),
    "TYPE_INT64": ("INT64", np.int64, TensorProto.INT64),
    "TYPE_FP16": ("FP16", np.float16, TensorProto.FLOAT16),
    "TYPE_FP32": ("FP32", np.float32, TensorProto.FLOAT),
    "TYPE_FP64": ("FP64", np.float64, TensorProto.DOUBLE),
    "TYPE_STRING": ("BYTES", np.object_, TensorProto.STRING),
    "TYPE_BF16": ("BF16", None, TensorProto.BFLOAT16),
}

WIRE_TO_NUMPY = {wire: np_type for wire, np_type, _ in _TABLE.values() if np_type is not None}
CONFIG_TO_WIRE = {cfg: wire for cfg, (wire, _, _) in _TABLE.items()}
ONNX_TO_CONFIG = {onnx_type: cfg for cfg, (_, _, onnx_type) in _TABLE.items()}


def wire_name(config_type_name: str) -> str:
    """TYPE_FP32 → FP32 (the datatype string of the KServe v2 protocol)."""
    return CONFIG_TO_WIRE.get(config_type_name, config_type_name.removeprefix("TYPE_"))


def numpy_dtype(wire: str) -> np.dtype | None:
    np_type = WIRE_TO_NUMPY.get(wire)
    return None if np_type is None else np.dtype(np_type)


def onnx_type_name(onnx_elem_type: int) -> str:
    return TensorProto.DataType.Name(onnx_elem_type)
