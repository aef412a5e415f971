"""Clara's Clara service: Version, Utilization, Stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from claractl import __version__
from claractl.platform.clara_api.answers import ok
from claractl.platform.clara_api.convert import timestamp
from claractl.platform.clara_api.protos import message as M
from claractl.platform.operations import Conflict, Context
from claractl.platform.operations.utilization import utilization

# The Clara Platform API version claractl serves (NVIDIA's client 0.8.1.7 speaks Clara 0.8.1).
CLARA_API_VERSION = (0, 8, 1)
WATCH_INTERVAL = 1.0


def _gpu_metrics(report: dict) -> list:
    when = timestamp(datetime.fromtimestamp(report["timestamp"], tz=timezone.utc))
    return [M("ClaraUtilizationResponse.GpuUtilization")(
        node_id=report["node"], pcie_id=g["pcie_id"], compute_utilization=g["compute_utilization"],
        memory_free=g["memory_free"], memory_used=g["memory_used"], memory_utilization=g["memory_utilization"],
        timestamp=when) for g in report["gpus"]]


class ClaraService:
    SERVICE, FAMILY = "Clara", ""

    def __init__(self, c: Context) -> None:
        self.c = c

    def Version(self, _request, _context):
        label = f"claractl {__version__}"
        major, minor, patch = CLARA_API_VERSION
        return M("ClaraVersionResponse")(header=ok(), version=M("Version")(major=major, minor=minor, patch=patch,
                                                                           label=label))

    def Utilization(self, request, context) -> Iterator:
        """GPUs as Clara reports them; the message has no CPU or memory fields, so those travel as
        trailing metadata (clara-cpu-percent, clara-memory-used-bytes, clara-memory-total-bytes)."""
        while True:
            report = utilization()
            yield M("ClaraUtilizationResponse")(header=ok(), gpu_metrics=_gpu_metrics(report))
            if not request.watch or not context.is_active():
                break
            time.sleep(WATCH_INTERVAL)
        context.set_trailing_metadata((
            ("clara-cpu-percent", f"{report['cpu']['percent']:g}"),
            ("clara-memory-used-bytes", str(report["memory"]["used"])),
            ("clara-memory-total-bytes", str(report["memory"]["total"])),
        ))

    def Stop(self, _request, _context):
        """Stop the platform process (its components, running jobs re-queued), after answering."""
        if self.c.stop_platform is None:
            raise Conflict("this platform cannot be stopped through the Clara API (it is embedded)")
        threading.Timer(0.2, self.c.stop_platform).start()
        return M("ClaraStopResponse")(header=ok())
