"""The model's grid (spacing, HU window, patch, classes) read from its Triton config."""

from __future__ import annotations

from ..common.errors import OperatorError
from ..common.inference import ModelInfo
from .windowing import ModelGrid


def grid_from_model(info: ModelInfo) -> ModelGrid:
    """Input dims [1, 1, D, H, W] and output dims [1, C, D, H, W]; parameters `spacing_mm` and
    `hu_window` ("lo,hi") as in blueprints/ct-segmentation/models/ct-organs/config.pbtxt."""
    if len(info.input_dims) != 5 or info.input_dims[:2] != [1, 1] or min(info.input_dims) <= 0:
        raise OperatorError(f"model {info.name!r}: input dims {info.input_dims} are not [1, 1, D, H, W]")
    if len(info.output_dims) != 5 or info.output_dims[2:] != info.input_dims[2:]:
        raise OperatorError(f"model {info.name!r}: output dims {info.output_dims} do not match input {info.input_dims}")
    try:
        spacing = float(info.parameters.get("spacing_mm", "1.0"))
        lo, hi = (float(v) for v in info.parameters.get("hu_window", "-1000,1000").split(","))
    except ValueError as exc:
        raise OperatorError(f"model {info.name!r}: bad spacing_mm/hu_window parameter ({exc})") from exc
    if spacing <= 0 or hi <= lo:
        raise OperatorError(f"model {info.name!r}: spacing_mm must be > 0 and hu_window lo < hi")
    return ModelGrid(spacing_mm=spacing, hu_min=lo, hu_max=hi,
                     patch=tuple(info.input_dims[2:]), num_classes=info.output_dims[1])
