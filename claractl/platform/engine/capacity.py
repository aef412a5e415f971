"""Admission: a job runs when its resource demand fits the free capacity.

A job's demand is the peak of what its operators request at once: operators at the same depth
of the DAG can run together, so demand = max over depths of the sum of their requests. Each
resource is clamped to the machine's capacity, so one job that asks for more than the machine
has still runs (alone) instead of waiting forever. Clara's defaults: cpu 2 cores, memory 1024 MB,
gpu 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import psutil

DEFAULT_REQUESTS = {"cpu": 2.0, "memory": 1024.0, "gpu": 0.0}


@dataclass
class Resources:
    cpu: float = 0.0
    memory: float = 0.0
    gpu: float = 0.0

    def fits_in(self, other: "Resources") -> bool:
        eps = 1e-9
        return self.cpu <= other.cpu + eps and self.memory <= other.memory + eps and self.gpu <= other.gpu + eps

    def __add__(self, o: "Resources") -> "Resources":
        return Resources(self.cpu + o.cpu, self.memory + o.memory, self.gpu + o.gpu)

    def __sub__(self, o: "Resources") -> "Resources":
        return Resources(self.cpu - o.cpu, self.memory - o.memory, self.gpu - o.gpu)

    def clamp(self, cap: "Resources") -> "Resources":
        return Resources(min(self.cpu, cap.cpu), min(self.memory, cap.memory), min(self.gpu, cap.gpu))

    def as_dict(self) -> dict[str, float]:
        return {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu}


def machine_capacity(cpu: float = 0, memory: int = 0, gpu: int = 0) -> Resources:
    """Configured capacity; 0 for cpu/memory means the whole machine."""
    return Resources(
        cpu=float(cpu) if cpu else float(os.cpu_count() or 1),
        memory=float(memory) if memory else psutil.virtual_memory().total / (1024 * 1024),
        gpu=float(gpu),
    )


def _number(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def operator_requests(op: dict[str, Any]) -> Resources:
    req = op.get("requests") or {}
    return Resources(
        cpu=_number(req.get("cpu"), DEFAULT_REQUESTS["cpu"]),
        memory=_number(req.get("memory"), DEFAULT_REQUESTS["memory"]),
        gpu=_number(req.get("gpu"), DEFAULT_REQUESTS["gpu"]),
    )


def job_demand(definition: dict[str, Any], capacity: Resources) -> Resources:
    ops = definition.get("operators") or []
    by_name = {op["name"].lower(): op for op in ops}
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset = frozenset()) -> int:
        if name in depth:
            return depth[name]
        op = by_name[name]
        deps = [str(i["from"]).lower() for i in op.get("input") or [] if i.get("from")]
        d = 1 + max((depth_of(x, seen | {name}) for x in deps if x in by_name and x not in seen), default=-1)
        depth[name] = d
        return d

    levels: dict[int, Resources] = {}
    for name, op in by_name.items():
        d = depth_of(name)
        levels[d] = levels.get(d, Resources()) + operator_requests(op)
    peak = Resources()
    for r in levels.values():
        peak = Resources(max(peak.cpu, r.cpu), max(peak.memory, r.memory), max(peak.gpu, r.gpu))
    return peak.clamp(capacity)
