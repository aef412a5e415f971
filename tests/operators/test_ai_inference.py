"""ai-inference end to end through tritonclient against the platform's inference service
(`python -m claractl.platform.inference`) serving the committed ct-organs model."""

import json

import nibabel as nib
import numpy as np
import pydicom

from operator_helpers import dice, run_operator
from phantom import LABELS


def test_http_segments_demo_study(tmp_path, demo_study, demo_volumes, triton_env):
    ph, _, info = demo_study
    env = {**triton_env, "NVIDIA_TRITON_GRPCURI": ""}
    run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path, "--model", "ct-organs", env=env)
    uid = info["series_instance_uid"]
    out = nib.load(tmp_path / f"{uid}.nii.gz")
    src = nib.load(demo_volumes / f"{uid}.nii.gz")
    assert out.get_data_dtype() == np.uint8 and out.shape == src.shape
    assert np.allclose(out.affine, src.affine)
    labels = np.asarray(out.dataobj)
    for c, name in enumerate(LABELS[1:], start=1):
        assert dice(labels, ph.labels, c) >= 0.9, name
    sidecar = json.loads((tmp_path / f"{uid}.json").read_text())
    assert sidecar["labels"] == list(LABELS) and sidecar["model"] == "ct-organs"
    assert sidecar["voxels_per_class"] == np.bincount(labels.ravel(), minlength=4).tolist()
    assert not (tmp_path / f"{info['series_instance_uid']}.json.tmp").exists()


def test_grpc_gives_the_same_labels(tmp_path, demo_volumes, triton_env):
    env = {**triton_env, "NVIDIA_TRITON_HTTPURI": ""}  # only gRPC known → gRPC without the flag
    run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path / "g", "--model", "ct-organs", env=env)
    run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path / "h", "--model", "ct-organs",
                 "--protocol", "http", env=triton_env)
    g = next((tmp_path / "g").glob("*.nii.gz"))
    h = tmp_path / "h" / g.name
    assert np.array_equal(np.asarray(nib.load(g).dataobj), np.asarray(nib.load(h).dataobj))


def test_seg_writer_takes_segment_names_from_the_model_config(tmp_path, demo_study, demo_volumes, triton_env):
    _, study, info = demo_study
    run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path / "labels", "--model", "ct-organs",
                 env=triton_env)
    (tmp_path / "labels" / f"{info['series_instance_uid']}.json").unlink()  # names must come from the server
    run_operator("dicom_seg_writer", "--dicom", study / "dicom", "--labels", tmp_path / "labels",
                 "--output", tmp_path / "out", "--model", "ct-organs", env=triton_env)
    seg = pydicom.dcmread(tmp_path / "out" / "seg.dcm")
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["liver", "spleen", "kidney"]


def test_unknown_model_and_missing_service_are_clear_errors(tmp_path, demo_volumes, triton_env):
    proc = run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path, "--model", "no-such-model",
                        env=triton_env, check=False)
    assert proc.returncode == 1 and "no-such-model" in proc.stderr and "Traceback" not in proc.stderr
    none = {"NVIDIA_TRITON_HTTPURI": "", "NVIDIA_TRITON_GRPCURI": "", "NVIDIA_CLARA_TRTISURI": ""}
    proc = run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path, "--model", "ct-organs",
                        env=none, check=False)
    assert proc.returncode == 1 and "NVIDIA_TRITON_HTTPURI" in proc.stderr
    dead = {**none, "NVIDIA_TRITON_HTTPURI": "127.0.0.1:9"}
    proc = run_operator("ai_inference", "--input", demo_volumes, "--output", tmp_path, "--model", "ct-organs",
                        env=dead, check=False)
    assert proc.returncode == 1 and "unreachable" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.nii.gz"))
