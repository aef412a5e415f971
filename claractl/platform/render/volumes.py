"""Find what the viewer can show for a job: CT volumes (NIfTI) and their label maps.

Where volumes come from, first hit wins:
1. the renderserver index (files a `renderserver` export task published, see agent.py);
2. the payload's NIfTI files: volumes from `input/` and `operators/dicom-reader/`, label maps
   from `operators/ai-inference/` (same file name as the volume they belong to);
   MetaImage files (.mha/.mhd, what Clara's reference pipelines publish) count too: converted to
   NIfTI once, cached under `<state-dir>/render/cache/<job-id>/metaimage/` (metaimage.py);
3. the job's DICOM input, converted per series to NIfTI on first request and cached under
   `<state-dir>/render/cache/<job-id>/`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from claractl.platform.render import metaimage

NIFTI_SUFFIXES = (".nii.gz", ".nii")
VOLUME_DIRS = ("input", "operators/dicom-reader")
LABEL_DIRS = ("operators/ai-inference",)
MAX_SEGMENTS = 255

# Distinct colours for segments 1..n (Tableau 10, then repeated with shifted hue).
PALETTE = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
]


@dataclass
class ViewSeries:
    """One volume the viewer can open, with its label map if the job has one."""

    key: str
    volume: Path
    label: Path | None = None
    origin: str = "payload"            # renderserver | payload | dicom
    segments: list[dict[str, Any]] = field(default_factory=list)


def nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.endswith(NIFTI_SUFFIXES)


def is_viewable(path: Path) -> bool:
    """A volume file the viewer can open: NIfTI, or MetaImage (converted on first request)."""
    return is_nifti(path) or metaimage.is_metaimage(path)


def _niftis_under(root: Path, rel_dirs: tuple[str, ...]) -> list[Path]:
    """Viewable files (NIfTI and MetaImage) under the payload's `rel_dirs`."""
    found: list[Path] = []
    for rel in rel_dirs:
        base = root / rel
        if base.is_dir():
            found.extend(sorted(p for p in base.rglob("*") if is_viewable(p)))
    return found


def classify_nifti(payload_root: Path, path: Path) -> str:
    """'label' or 'volume' for a NIfTI file a renderserver task listed.

    By location first (the bundled operators' layout), then by content: integer voxels with
    few distinct values are a label map.
    """
    rel = path.relative_to(payload_root).as_posix() if path.is_relative_to(payload_root) else path.name
    if any(rel.startswith(d + "/") for d in LABEL_DIRS):
        return "label"
    if any(rel.startswith(d + "/") for d in VOLUME_DIRS):
        return "volume"
    if re.search(r"(^|[/_.-])(seg|label|mask)", rel, re.I):
        return "label"
    if metaimage.is_metaimage(path):
        data = metaimage.voxels(path)                     # z, y, x
        data = data[::2, ::4, ::4]
    else:
        img = nib.load(str(path))
        if not np.issubdtype(img.get_data_dtype(), np.integer):
            return "volume"
        data = np.asanyarray(img.dataobj)[::4, ::4, ::2]
    if not np.issubdtype(data.dtype, np.integer):
        return "volume"
    return "label" if np.unique(data).size <= 32 and data.min() >= 0 else "volume"


def pair_series(volumes: list[Path], labels: list[Path], origin: str) -> list[ViewSeries]:
    """Match label maps to volumes by file name; a single label goes with a single volume."""
    by_stem = {nifti_stem(p): p for p in labels}
    series = []
    for vol in volumes:
        label = by_stem.get(nifti_stem(vol))
        if label is None and len(volumes) == 1 and len(labels) == 1:
            label = labels[0]
        series.append(ViewSeries(key=safe_key(nifti_stem(vol)), volume=vol, label=label, origin=origin))
    # Volumes with a segmentation first: that is what a reader opens the viewer for.
    series.sort(key=lambda s: s.label is None)
    return series


def safe_key(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._-]", "_", text)[:128] or "volume"


def segment_table(label: Path) -> list[dict[str, Any]]:
    """Segments present in a label map: value, name (from a sidecar JSON if any), colour."""
    data = np.asanyarray(nib.load(str(label)).dataobj)
    values = np.unique(data[data > 0]).astype(int).tolist()[:MAX_SEGMENTS]
    names = _segment_names(label)
    return [
        {
            "value": v,
            "name": names.get(str(v), f"segment {v}"),
            "color": list(PALETTE[(v - 1) % len(PALETTE)]),
        }
        for v in values
    ]


def _segment_names(label: Path) -> dict[str, str]:
    """Names from `<label-stem>.json` or `labels.json` beside the label map.

    Either {"1": "liver", …} or {"labels": {"1": "liver"}} (also a list, index = value).
    """
    for candidate in (label.with_name(nifti_stem(label) + ".json"), label.with_name("labels.json")):
        if not candidate.is_file():
            continue
        try:
            raw = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        raw = raw.get("labels", raw) if isinstance(raw, dict) else raw
        if isinstance(raw, list):
            return {str(i): str(n) for i, n in enumerate(raw)}
        if isinstance(raw, dict):
            return {str(k): str(v) for k, v in raw.items()}
    return {}


class VolumeFinder:
    """Per-platform: locates (and converts, once) a job's viewable volumes."""

    def __init__(self, payloads_dir: Path, render_dir: Path) -> None:
        self.payloads_dir = payloads_dir
        self.index_dir = render_dir / "index"
        self.cache_dir = render_dir / "cache"
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._segments: dict[tuple[str, float], list[dict[str, Any]]] = {}

    def _lock(self, job_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(job_id, threading.Lock())

    # -- the renderserver index -------------------------------------------------------------
    def index_path(self, job_id: str) -> Path:
        return self.index_dir / f"{job_id}.json"

    def write_index(self, job_id: str, entries: list[dict[str, str]]) -> None:
        """Merge entries ({path, kind}) into the job's index; atomic (temp + rename)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        current = {e["path"]: e for e in self.read_index(job_id)}
        current.update({e["path"]: e for e in entries})
        target = self.index_path(job_id)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(current.values(), key=lambda e: e["path"]), indent=1))
        os.replace(tmp, target)

    def read_index(self, job_id: str) -> list[dict[str, str]]:
        path = self.index_path(job_id)
        if not path.is_file():
            return []
        try:
            return list(json.loads(path.read_text()))
        except ValueError:
            return []

    # -- discovery --------------------------------------------------------------------------
    def as_nifti(self, job_id: str, root: Path, paths: list[Path]) -> list[Path]:
        """NIfTI files as they are; MetaImage files converted (once) into the job's cache."""
        out = []
        for path in paths:
            if metaimage.is_metaimage(path):
                rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
                target = self.cache_dir / job_id / "metaimage" / rel.parent / (metaimage.stem(rel) + ".nii.gz")
                with self._lock(job_id):
                    source, path = path, metaimage.to_nifti(path, target)
                    for sidecar in (metaimage.stem(source) + ".json", "labels.json"):   # segment names
                        if (source.parent / sidecar).is_file():
                            shutil.copyfile(source.parent / sidecar, target.parent / sidecar)
            out.append(path)
        return out

    def find(self, job_id: str, payload_id: str) -> list[ViewSeries]:
        root = self.payloads_dir / payload_id
        series = (self._from_index(job_id, root) or self._from_payload(job_id, root)
                  or self._from_dicom(job_id, root))
        for s in series:
            s.segments = self.segments(s.label) if s.label else []
        return series

    def _from_index(self, job_id: str, root: Path) -> list[ViewSeries]:
        entries = self.read_index(job_id)
        volumes = [root / e["path"] for e in entries if e["kind"] == "volume" and is_viewable(root / e["path"])]
        labels = [root / e["path"] for e in entries if e["kind"] == "label" and is_viewable(root / e["path"])]
        if not volumes:
            return []
        # A published volume may come without a published label map: use the payload's.
        return pair_series(self.as_nifti(job_id, root, volumes),
                           self.as_nifti(job_id, root, labels or _niftis_under(root, LABEL_DIRS)), "renderserver")

    def _from_payload(self, job_id: str, root: Path) -> list[ViewSeries]:
        volumes = _niftis_under(root, VOLUME_DIRS)
        if not volumes:
            return []
        return pair_series(self.as_nifti(job_id, root, volumes),
                           self.as_nifti(job_id, root, _niftis_under(root, LABEL_DIRS)), "payload")

    def _from_dicom(self, job_id: str, root: Path) -> list[ViewSeries]:
        from claractl.platform.render import dicom_volume  # pydicom import only when needed

        # DICOM the job published to the viewer, else its DICOM input.
        published = [root / e["path"] for e in self.read_index(job_id) if e["kind"] == "dicom"]
        input_dir = root / "input"
        if not published and not input_dir.is_dir():
            return []
        with self._lock(job_id):
            out_dir = self.cache_dir / job_id
            done = out_dir / "converted.json"
            if done.is_file():
                names = json.loads(done.read_text())
            else:
                files = published or [p for p in input_dir.rglob("*") if p.is_file()]
                names = dicom_volume.convert_series(files, out_dir)
                out_dir.mkdir(parents=True, exist_ok=True)
                done.write_text(json.dumps(names))
        volumes = [out_dir / n for n in names if (out_dir / n).is_file()]
        return pair_series(volumes, self.as_nifti(job_id, root, _niftis_under(root, LABEL_DIRS)), "dicom")

    def reduced(self, job_id: str, series: ViewSeries, kind: str, max_dim: int) -> Path:
        """The series' volume or label map with every axis at most `max_dim` voxels (for browsers
        that render on the CPU). Same integer strides for both, so they stay on one grid; cached."""
        source = series.volume if kind == "volume" else series.label
        shape = nib.load(str(series.volume)).shape[:3]
        strides = tuple(max(1, -(-n // max_dim)) for n in shape)
        if strides == (1, 1, 1):
            return source
        suffix = ".nii.gz" if source.name.endswith(".gz") else ".nii"   # the URL told the browser which
        target = self.cache_dir / job_id / "reduced" / f"{series.key}.{kind}.{max_dim}{suffix}"
        if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
            return target
        with self._lock(job_id):
            target.parent.mkdir(parents=True, exist_ok=True)
            img = nib.load(str(source))
            small = img.slicer[:: strides[0], :: strides[1], :: strides[2]]   # affine follows the strides
            small = nib.Nifti1Image(np.asarray(small.dataobj), small.affine, small.header)
            tmp = target.with_name(f"{target.name}.part{suffix}")
            nib.save(small, str(tmp))
            os.replace(tmp, target)
        return target

    def segments(self, label: Path) -> list[dict[str, Any]]:
        key = (str(label), label.stat().st_mtime)
        if key not in self._segments:
            self._segments[key] = segment_table(label)
        return self._segments[key]
