"""Sliding window and resampling with in-process predictors (no server needed)."""

import numpy as np
import pytest

from claractl_operators.ai_inference.windowing import (
    ModelGrid, resample, resampled_shape, segment_volume, sliding_window_probabilities, to_model_grid,
)
from operator_helpers import dice, model_grid
from phantom import LABELS, generate_phantom

GRID = ModelGrid(spacing_mm=4.0, hu_min=-1000, hu_max=1000, patch=(64, 64, 64), num_classes=4)


def threshold_model(calls=None):
    """A 'model' whose logits say class 1 where the scaled input > 0 (HU > 0), else class 0."""
    def predict(x):
        assert x.shape == (1, 1, 64, 64, 64) and x.dtype == np.float32
        if calls is not None:
            calls.append(x.copy())
        fg = (x[0, 0] > 0).astype(np.float32) * 10
        return np.stack([10 - fg, fg, np.zeros_like(fg), np.zeros_like(fg)])[None]
    return predict


@pytest.mark.parametrize("shape", [(40, 50, 30), (64, 64, 64), (150, 97, 71)])
def test_sliding_window_covers_every_voxel_consistently(shape):
    rng = np.random.default_rng(0)
    scaled = rng.uniform(-1, 1, size=shape).astype(np.float32)
    calls = []
    probs = sliding_window_probabilities(scaled, threshold_model(calls), GRID, overlap=0.5)
    assert probs.shape == (4, *shape)
    assert np.allclose(probs.sum(0), 1.0, atol=1e-5)
    assert np.array_equal(probs.argmax(0) == 1, scaled > 0)
    expected = int(np.prod([1 if n <= 64 else len(range(0, n - 64 + 1, 32)) + ((n - 64) % 32 != 0) for n in shape]))
    assert len(calls) == expected


def test_padding_uses_air():
    calls = []
    sliding_window_probabilities(np.zeros((10, 10, 10), np.float32), threshold_model(calls), GRID)
    assert len(calls) == 1 and calls[0][0, 0, 20, 20, 20] == -1.0


def test_model_grid_resampling_keeps_extent_and_scales_hu():
    vol = np.full((256, 256, 100), 1000, dtype=np.int16)
    vol[:, :, :50] = -1000
    scaled = to_model_grid(vol, (1.5, 1.5, 2.5), GRID)
    assert scaled.shape == resampled_shape(vol.shape, (1.5, 1.5, 2.5), 4.0) == (96, 96, 62)
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    # the boundary at 125 mm stays at 125 mm (voxel 31.25 at 4.03 mm): edges are aligned
    profile = scaled[48, 48]
    assert profile[30] < 0 < profile[32]


def test_segment_volume_returns_labels_on_input_grid():
    vol = np.full((120, 100, 40), -800, dtype=np.int16)
    vol[30:90, 20:80, 10:30] = 200
    labels = segment_volume(vol, (2.0, 2.0, 3.0), threshold_model(), GRID)
    assert labels.shape == vol.shape and labels.dtype == np.uint8
    truth = (vol > 0).astype(np.uint8)
    assert dice(labels, truth, 1) > 0.93  # boundaries quantised to the 4 mm grid, at most 1 voxel
    assert np.allclose(np.argwhere(labels == 1).mean(0), np.argwhere(truth == 1).mean(0), atol=0.01)  # no shift


def test_resample_nearest_keeps_label_values():
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[5:15, 5:15, 5:15] = 3
    up = resample(lab, (40, 40, 40), order=0)
    assert set(np.unique(up)) == {0, 3} and (up == 3).sum() == 8 * (lab == 3).sum()


def test_trained_model_segments_held_out_phantom(onnx_predict):
    """Full pipeline numerics with the committed ONNX model: Dice ≥ 0.9 per organ."""
    ph = generate_phantom(seed=4)  # validation seed, never trained on
    labels = segment_volume(ph.hu, ph.spacing, onnx_predict, model_grid())
    for c, name in enumerate(LABELS[1:], start=1):
        assert dice(labels, ph.labels, c) >= 0.9, name
