"""What the machine reports: CPU and memory (psutil) and each NVIDIA GPU (nvidia-smi, when the
machine has one). Served as `GET /api/v1/utilization` and as Clara's `Clara.Utilization`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import psutil

GPU_QUERY = "pci.bus,utilization.gpu,memory.free,memory.used,utilization.memory"


def gpus(timeout: float = 5.0) -> list[dict[str, Any]]:
    """One entry per GPU nvidia-smi lists; [] without nvidia-smi (no NVIDIA driver) or on its error."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        try:
            bus, compute, free, used, mem = int(parts[0], 0), float(parts[1]), int(parts[2]), int(parts[3]), float(parts[4])
        except ValueError:
            continue
        found.append({"pcie_id": bus, "compute_utilization": compute, "memory_free": free * 1024 * 1024,
                      "memory_used": used * 1024 * 1024, "memory_utilization": mem})
    return found


def utilization() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "node": socket.gethostname(),
        "timestamp": time.time(),
        "cpu": {"count": psutil.cpu_count() or 1, "percent": psutil.cpu_percent(interval=0.1)},
        "memory": {"total": memory.total, "used": memory.total - memory.available, "percent": memory.percent},
        "gpus": gpus(),
    }
