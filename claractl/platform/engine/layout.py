"""Where each operator's inputs and outputs live in a job payload (Clara's layout).

    <payload>/input/                          the job input (inputs without `from`)
    <payload>/operators/<op>/                 an operator's single unnamed output
    <payload>/operators/<op>/<output-name>/   a named output
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class OperatorIO:
    inputs: dict[str, Path]    # PDL path → host path
    outputs: dict[str, Path]


def _by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["name"].lower(): op for op in definition.get("operators") or []}


def output_dir(payload: Path, op: dict[str, Any], output: dict[str, Any]) -> Path:
    base = payload / "operators" / op["name"]
    return base / output["name"] if output.get("name") else base


def source_dir(payload: Path, definition: dict[str, Any], inp: dict[str, Any]) -> Path:
    if not inp.get("from"):
        return payload / "input"
    ops = _by_name(definition)
    src = ops.get(str(inp["from"]).lower())
    if src is None:
        raise ValueError(f"input from unknown operator {inp['from']!r}")
    outputs = src.get("output") or []
    if inp.get("name"):
        for out in outputs:
            if str(out.get("name", "")).lower() == str(inp["name"]).lower():
                return output_dir(payload, src, out)
        raise ValueError(f"operator {src['name']!r} has no output named {inp['name']!r}")
    if len(outputs) == 1:
        return output_dir(payload, src, outputs[0])
    return payload / "operators" / src["name"]


def operator_io(payload: Path, definition: dict[str, Any], op: dict[str, Any]) -> OperatorIO:
    inputs = {i["path"]: source_dir(payload, definition, i) for i in op.get("input") or []}
    outputs = {o["path"]: output_dir(payload, op, o) for o in op.get("output") or []}
    return OperatorIO(inputs=inputs, outputs=outputs)


def dependencies(op: dict[str, Any]) -> set[str]:
    return {str(i["from"]).lower() for i in op.get("input") or [] if i.get("from")}


def sink_outputs(payload: Path, definition: dict[str, Any]) -> list[Path]:
    """Output dirs of operators nobody reads from: what a pipeline produces."""
    ops = definition.get("operators") or []
    used = set().union(*(dependencies(op) for op in ops)) if ops else set()
    dirs: list[Path] = []
    for op in ops:
        if op["name"].lower() in used:
            continue
        outs = op.get("output") or []
        dirs.extend(output_dir(payload, op, o) for o in outs)
    return dirs
