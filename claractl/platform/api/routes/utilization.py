"""What the machine reports: CPU, memory, GPUs (the same figures as Clara's Clara.Utilization)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from claractl.platform.operations.utilization import utilization

router = APIRouter(tags=["platform"])


@router.get("/utilization")
def get_utilization() -> dict[str, Any]:
    return utilization()
