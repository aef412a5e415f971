"""Which name each label value has: --labels-names, else the model config on the inference
service (parameter `labels`), else the ai-inference sidecar JSON, else `label-N`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..common.errors import OperatorError

log = logging.getLogger("dicom-seg-writer")


def names_from_arg(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not names or any(not n for n in names):
        raise OperatorError(f"--labels-names {text!r}: give comma-separated names, background first (value 0)")
    return names


def names_from_model(model: str, protocol: str | None) -> list[str]:
    from ..common.inference import TritonModel

    m = TritonModel(model, protocol)
    try:
        if not m.info.labels:
            log.warning("model %s has no `labels` parameter in its config; using generic names", model)
        return m.info.labels
    finally:
        m.close()


def names_from_sidecar(label_map: Path) -> list[str]:
    sidecar = label_map.with_name(label_map.name.replace(".nii.gz", "").replace(".nii", "") + ".json")
    if not sidecar.is_file():
        return []
    try:
        return [str(n) for n in json.loads(sidecar.read_text()).get("labels", [])]
    except (ValueError, AttributeError) as exc:
        raise OperatorError(f"{sidecar}: not a JSON object with a `labels` list ({exc})") from exc


def name_of(value: int, names: list[str]) -> str:
    return names[value] if value < len(names) else f"label-{value}"
