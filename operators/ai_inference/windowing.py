"""Model-grid preprocessing and sliding-window inference, independent of how a patch is run.

`segment_volume` takes any `predict(patch) -> logits` callable (Triton client, in-process ONNX
Runtime session, a torch model), so the numerics are unit-testable without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

Predict = Callable[[np.ndarray], np.ndarray]  # (1, 1, D, H, W) float32 → (1, C, D, H, W) logits


@dataclass(frozen=True)
class ModelGrid:
    """What the model expects: isotropic spacing, HU window scaled to [-1, 1], patch size."""

    spacing_mm: float = 4.0
    hu_min: float = -1000.0
    hu_max: float = 1000.0
    patch: tuple[int, int, int] = (64, 64, 64)
    num_classes: int = 4


def resampled_shape(shape, spacing, target_mm: float) -> tuple[int, ...]:
    return tuple(max(1, int(round(n * s / target_mm))) for n, s in zip(shape, spacing))


def resample(volume: np.ndarray, new_shape, order: int) -> np.ndarray:
    """Resample keeping the physical extent (voxel edges aligned, grid_mode): order 1 = trilinear,
    0 = nearest."""
    new_shape = tuple(int(n) for n in new_shape)
    factors = [n_new / n_old for n_new, n_old in zip(new_shape, volume.shape)]
    out = ndimage.zoom(volume, factors, order=order, mode="nearest", grid_mode=True, prefilter=False)
    if out.shape != new_shape:  # zoom rounds shapes itself; guard against a float off-by-one
        raise RuntimeError(f"resample produced {out.shape}, wanted {new_shape}")
    return out


def scale_hu(volume: np.ndarray, grid: ModelGrid) -> np.ndarray:
    v = np.clip(volume.astype(np.float32), grid.hu_min, grid.hu_max)
    return (2.0 * (v - grid.hu_min) / (grid.hu_max - grid.hu_min) - 1.0).astype(np.float32)


def to_model_grid(volume: np.ndarray, spacing, grid: ModelGrid) -> np.ndarray:
    """HU volume on its own grid → scaled float32 volume at the model's isotropic spacing."""
    shape = resampled_shape(volume.shape, spacing, grid.spacing_mm)
    return scale_hu(resample(volume.astype(np.float32), shape, order=1), grid)


def _gaussian_weight(patch) -> np.ndarray:
    """Importance map that favours patch centres (sigma = 1/8 of the patch, as nnU-Net)."""
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n / 8)) ** 2) for n in patch]
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    w = w / w.max()
    return np.maximum(w, 1e-3).astype(np.float32)


def _starts(size: int, patch: int, step: int) -> list[int]:
    if size <= patch:
        return [0]
    starts = list(range(0, size - patch + 1, step))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def sliding_window_probabilities(
    scaled: np.ndarray, predict: Predict, grid: ModelGrid, overlap: float = 0.5
) -> np.ndarray:
    """Class probabilities (C, *scaled.shape): Gaussian-blended softmax over overlapping patches.
    Volumes smaller than a patch are padded with the air value (-1)."""
    patch = grid.patch
    pad = [(0, max(0, p - n)) for n, p in zip(scaled.shape, patch)]
    padded = np.pad(scaled, pad, mode="constant", constant_values=-1.0)
    steps = [max(1, int(p * (1.0 - overlap))) for p in patch]
    weight = _gaussian_weight(patch)
    acc = np.zeros((grid.num_classes, *padded.shape), dtype=np.float32)
    norm = np.zeros(padded.shape, dtype=np.float32)
    for i in _starts(padded.shape[0], patch[0], steps[0]):
        for j in _starts(padded.shape[1], patch[1], steps[1]):
            for k in _starts(padded.shape[2], patch[2], steps[2]):
                sl = (slice(i, i + patch[0]), slice(j, j + patch[1]), slice(k, k + patch[2]))
                x = np.ascontiguousarray(padded[sl][None, None])
                logits = np.asarray(predict(x), dtype=np.float32)
                if logits.shape != (1, grid.num_classes, *patch):
                    raise ValueError(f"model returned shape {logits.shape}, expected {(1, grid.num_classes, *patch)}")
                acc[(slice(None), *sl)] += _softmax(logits[0]) * weight
                norm[sl] += weight
    probs = acc / norm
    return probs[:, : scaled.shape[0], : scaled.shape[1], : scaled.shape[2]]


def segment_volume(
    volume: np.ndarray, spacing, predict: Predict, grid: ModelGrid, overlap: float = 0.5
) -> np.ndarray:
    """HU volume → uint8 label map on the same grid: resample to the model spacing, sliding
    window, then per-class probabilities resampled back (trilinear) and argmax. Interpolating
    probabilities rather than labels keeps sub-voxel organ boundaries on the finer input grid."""
    scaled = to_model_grid(volume, spacing, grid)
    probs = sliding_window_probabilities(scaled, predict, grid, overlap)
    labels = np.zeros(volume.shape, dtype=np.uint8)
    best = np.full(volume.shape, -1.0, dtype=np.float32)
    for c in range(grid.num_classes):  # one class at a time keeps memory at two full-size arrays
        p = resample(probs[c], volume.shape, order=1)
        better = p > best
        labels[better] = c
        best[better] = p[better]
    return labels
