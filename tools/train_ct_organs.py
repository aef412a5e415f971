"""Train the ct-organs model (compact 3D U-Net) on synthetic phantoms and export it as ONNX.

Reproducible on CPU (fixed seeds, deterministic data), about 10-15 minutes on 2 cores:

    pip install torch==2.13.0          # or: pip install -e .[train]
    python tools/train_ct_organs.py    # writes blueprints/ct-segmentation/models/ct-organs/1/model.onnx

Training phantoms use seeds 10000+ at random native grids, resampled to the model grid with the
same code the ai-inference operator uses (claractl_operators.ai_inference.windowing). Validation
runs the full operator pipeline (resample → sliding window through ONNX Runtime → resample back)
on held-out phantoms, seeds 0..4 at the demo grid, and prints Dice per organ.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phantom import LABELS, generate_phantom  # noqa: E402

from claractl_operators.ai_inference.windowing import (  # noqa: E402
    ModelGrid,
    resample,
    resampled_shape,
    segment_volume,
    to_model_grid,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "blueprints/ct-segmentation/models/ct-organs/1/model.onnx"
MODEL_DIR = REPO / "blueprints/ct-segmentation/models/ct-organs"


def grid_from_config(model_dir: Path = MODEL_DIR) -> ModelGrid:
    """The model grid (spacing, HU window, patch, classes) from config.pbtxt, read the way the
    ai-inference operator reads it from the inference service."""
    import tritonclient.grpc.model_config_pb2 as mc
    from google.protobuf import text_format
    from google.protobuf.json_format import MessageToDict

    from claractl_operators.ai_inference.grid import grid_from_model
    from claractl_operators.common.inference import parse_config

    cfg = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    return grid_from_model(parse_config(cfg.name, MessageToDict(cfg, preserving_proto_field_name=True)))


GRID = grid_from_config()


def training_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One phantom on a random native grid → (scaled image, labels) on the model grid."""
    rng = np.random.default_rng(seed + 7_000_000)
    in_plane = float(rng.uniform(1.2, 2.0))
    thickness = float(rng.uniform(1.5, 3.5))
    size = int(rng.integers(224, 300))
    slices = int(round(250.0 / thickness * rng.uniform(0.85, 1.15)))
    ph = generate_phantom(seed, (size, size, slices), (in_plane, in_plane, thickness), float(rng.uniform(8, 18)))
    image = to_model_grid(ph.hu, ph.spacing, GRID)
    shape = image.shape
    soft = np.stack([resample((ph.labels == c).astype(np.float32), shape, order=1) for c in range(GRID.num_classes)])
    return image, soft.argmax(0).astype(np.int64)


def build_model(base: int = 8):
    import torch
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(cout, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.LeakyReLU(0.01, inplace=True),
        )

    class UNet3D(nn.Module):
        def __init__(self, chans=(base, base * 2, base * 4, base * 8), classes=GRID.num_classes):
            super().__init__()
            self.down = nn.ModuleList()
            cin = 1
            for c in chans:
                self.down.append(block(cin, c))
                cin = c
            self.pool = nn.MaxPool3d(2)
            self.up = nn.ModuleList()
            self.dec = nn.ModuleList()
            for c in reversed(chans[:-1]):
                self.up.append(nn.ConvTranspose3d(cin, c, 2, stride=2))
                self.dec.append(block(2 * c, c))
                cin = c
            self.head = nn.Conv3d(cin, classes, 1)

        def forward(self, x):
            skips = []
            for i, d in enumerate(self.down):
                x = d(x)
                if i < len(self.down) - 1:
                    skips.append(x)
                    x = self.pool(x)
            for up, dec in zip(self.up, self.dec):
                x = up(x)
                x = dec(torch.cat([x, skips.pop()], dim=1))
            return self.head(x)

    return UNet3D()


def random_crop(image, labels, rng, patch=GRID.patch, foreground=0.8):
    """A patch-sized crop; with probability `foreground` centred on a random organ voxel of a
    random class (as nnU-Net oversamples foreground), so small organs are seen often."""
    pad = [(0, max(0, p - n)) for n, p in zip(image.shape, patch)]
    image = np.pad(image, pad, constant_values=-1.0)
    labels = np.pad(labels, pad, constant_values=0)
    present = [c for c in range(1, GRID.num_classes) if (labels == c).any()]
    if present and rng.random() < foreground:
        idx = np.argwhere(labels == present[int(rng.integers(len(present)))])
        centre = idx[int(rng.integers(len(idx)))]
        starts = [int(np.clip(c - p // 2 + rng.integers(-p // 4, p // 4 + 1), 0, n - p))
                  for c, n, p in zip(centre, image.shape, patch)]
    else:
        starts = [int(rng.integers(0, n - p + 1)) for n, p in zip(image.shape, patch)]
    sl = tuple(slice(s, s + p) for s, p in zip(starts, patch))
    return image[sl], labels[sl]


def dice_per_organ(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    out = {}
    for c, name in enumerate(LABELS):
        if c == 0:
            continue
        a, b = pred == c, truth == c
        denom = a.sum() + b.sum()
        out[name] = float(2.0 * (a & b).sum() / denom) if denom else 1.0
    return out


def export_onnx(model, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    dummy = torch.zeros(1, 1, *GRID.patch)
    torch.onnx.export(
        model, dummy, str(path), input_names=["INPUT__0"], output_names=["OUTPUT__0"],
        opset_version=17, dynamo=False, do_constant_folding=True,
    )


def validate(onnx_path: Path, seeds) -> dict[str, dict[str, float]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])

    def predict(x):
        return sess.run(["OUTPUT__0"], {"INPUT__0": x})[0]

    results = {}
    for seed in seeds:
        ph = generate_phantom(seed)  # the demo grid: 256×256×100 at 1.5×1.5×2.5 mm
        labels = segment_volume(ph.hu, ph.spacing, predict, GRID)
        results[str(seed)] = dice_per_organ(labels, ph.labels)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--cases", type=int, default=32, help="training phantoms")
    p.add_argument("--steps", type=int, default=900, help="optimiser steps")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--checkpoint-every", type=int, default=100, help="export ONNX every N steps too")
    p.add_argument("--base", type=int, default=8, help="channels of the first U-Net level")
    p.add_argument("--val-seeds", default="0,1,2,3,4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--report", type=Path, help="also write the figures as JSON here")
    a = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(0)
    t0 = time.time()
    cases = [training_case(10_000 + i) for i in range(a.cases)]
    t_data = time.time() - t0
    print(f"data: {a.cases} phantoms in {t_data:.0f} s, model-grid shapes e.g. {cases[0][0].shape}", flush=True)

    model = build_model(a.base)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.1)
    class_w = torch.tensor([0.3, 1.0, 2.0, 2.0])  # small organs weigh more
    t1 = time.time()
    model.train()
    running = None
    for step in range(1, a.steps + 1):
        xs, ys = [], []
        for _ in range(a.batch):
            img, lab = cases[int(rng.integers(len(cases)))]
            x, y = random_crop(img, lab, rng)
            x = x + rng.normal(0, 0.005)  # small global intensity jitter (±5 HU)
            xs.append(x[None])
            ys.append(y)
        x = torch.from_numpy(np.stack(xs).astype(np.float32))
        y = torch.from_numpy(np.stack(ys))
        logits = model(x)
        ce = F.cross_entropy(logits, y, weight=class_w)
        prob = logits.softmax(1)
        onehot = F.one_hot(y, GRID.num_classes).permute(0, 4, 1, 2, 3).float()
        inter = (prob * onehot).sum((0, 2, 3, 4))
        dice = (2 * inter + 1) / (prob.sum((0, 2, 3, 4)) + onehot.sum((0, 2, 3, 4)) + 1)
        loss = ce + (1 - dice[1:]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if a.checkpoint_every and step % a.checkpoint_every == 0 and step < a.steps:
            export_onnx(model, a.out)  # a usable model even if training is cut short
            model.train()
        if step % 25 == 0 or step == 1:
            print(f"step {step}/{a.steps} loss {running:.4f} dice {[round(v, 3) for v in dice[1:].tolist()]} "
                  f"{time.time() - t1:.0f} s", flush=True)
    t_train = time.time() - t1

    export_onnx(model, a.out)
    size_mb = a.out.stat().st_size / 1e6
    seeds = [int(s) for s in a.val_seeds.split(",") if s]
    t2 = time.time()
    val = validate(a.out, seeds)
    t_val = time.time() - t2
    organs = LABELS[1:]
    mean = {o: float(np.mean([v[o] for v in val.values()])) for o in organs}
    worst = {o: float(np.min([v[o] for v in val.values()])) for o in organs}
    report = {
        "parameters": n_params, "onnx_mb": round(size_mb, 2), "train_cases": a.cases, "steps": a.steps,
        "batch": a.batch, "final_loss": round(running, 4), "data_s": round(t_data), "train_s": round(t_train),
        "validation_s": round(t_val), "dice_by_seed": val, "dice_mean": mean, "dice_min": worst,
    }
    print(json.dumps(report, indent=2))
    if a.report:
        a.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
