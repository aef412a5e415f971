"""Helpers for the operator tests (importable as `operator_helpers`: pytest puts this folder on
sys.path; a unique name so it never clashes with another folder's conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))  # tools/phantom.py

MODEL_DIR = REPO / "blueprints/ct-segmentation/models/ct-organs"
MODEL_ONNX = MODEL_DIR / "1/model.onnx"


def run_operator(module: str, *args, env=None, check=True) -> subprocess.CompletedProcess:
    """Run an operator exactly as the local executor does: python -m claractl_operators.<module>."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", f"claractl_operators.{module}", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=240)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def dice(pred: np.ndarray, truth: np.ndarray, label: int) -> float:
    a, b = pred == label, truth == label
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def model_grid():
    """The committed model's grid (spacing, HU window, patch, classes) from its config.pbtxt."""
    sys.path.insert(0, str(REPO / "tools"))
    from train_ct_organs import grid_from_config

    return grid_from_config(MODEL_DIR)
