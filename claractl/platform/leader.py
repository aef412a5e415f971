"""The engine role of a high-availability platform: several replicas, one leader.

    leader = LeaderElected(config, make_components)   # make_components() → {"engine": Engine, …}
    leader.start()        # campaigns in the background; a standby is ready (it can take over)
    leader.status()       # {"leader": bool, "identity": …, "holder": …, "components": {…}}
    leader.stop()         # leader: components stop (the engine detaches), then the Lease is released

The components made for the leader (the engine with `adopt=True`, the DICOM export agent) run
only while this replica holds the Lease `config.cluster.lease_name` (claractl/kube/elector.py):
one scheduler and one export agent however many replicas run. A new leader's engine re-attaches
to the operator Jobs the previous one left running. Losing the Lease while alive (the API server
unreachable for 2/3 of the lease) ends the process at once (`on_lost`, default exit code 70): it
must not keep scheduling beside a new leader, and Kubernetes restarts it as a candidate.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

from claractl.platform.config import PlatformConfig

log = logging.getLogger("claractl.platform.leader")
LOST_EXIT_CODE = 70


def _exit_now() -> None:
    logging.shutdown()
    os._exit(LOST_EXIT_CODE)


def lease_namespace() -> str:
    """The namespace the platform runs in (the chart sets CLARA_K8S_NAMESPACE)."""
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.environ.get("CLARA_K8S_NAMESPACE"):
        return os.environ["CLARA_K8S_NAMESPACE"]
    return open(path).read().strip() if os.path.exists(path) else "default"


class LeaderElected:
    def __init__(self, config: PlatformConfig, make_components: Callable[[], dict[str, Any]],
                 elector: Any = None, on_lost: Callable[[], None] = _exit_now) -> None:
        self.config = config
        self.make_components = make_components
        self.identity = f"{config.cluster.replica or socket.gethostname()}/{uuid.uuid4().hex[:8]}"
        self._elector = elector
        self.on_lost = on_lost
        self.components: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting: threading.Thread | None = None
        self.leader_since: float | None = None      # time.time() when this replica took over
        self.takeover_seconds: float | None = None   # from winning the Lease to the engine admitting jobs

    @property
    def elector(self):
        if self._elector is None:
            from claractl.kube.client import Rest, load_api_client
            from claractl.kube.elector import LeaderElector
            self._elector = LeaderElector(Rest(load_api_client()), lease_namespace(), self.config.cluster.lease_name,
                                          self.identity, lease_seconds=self.config.cluster.lease_seconds)
        return self._elector

    # -- component interface -------------------------------------------------------------------
    def start(self) -> None:
        elector = self.elector          # a configuration error shows at start, not in the thread
        self._stop.clear()
        self._thread = threading.Thread(target=self._campaign, args=(elector,), name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 330.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        elector = self._elector
        leading = bool(elector is not None and elector.leading)
        out: dict[str, Any] = {
            "state": "leading" if leading else "standby", "leader": leading, "identity": self.identity,
            "holder": getattr(elector, "holder", ""), "lease": self.config.cluster.lease_name,
            # A standby is ready: it is what takes over when the leader goes.
            "ready": bool(self._thread and self._thread.is_alive()),
        }
        if leading:
            out["leader_since"] = self.leader_since
            out["takeover_seconds"] = self.takeover_seconds
            out["components"] = {name: comp.status() for name, comp in dict(self.components).items()}
        return out

    def wake(self) -> None:
        engine = self.components.get("engine")
        if engine is not None:
            engine.wake()

    # -- leading -------------------------------------------------------------------------------
    def _campaign(self, elector) -> None:
        elector.run(self._lead, self._stopped, self._stop)

    def _stopped(self) -> None:
        if self._stop.is_set():           # asked to stop: hand over cleanly, then the Lease goes
            self._step_down()
            return
        # Lost: stop nothing gracefully (an export agent would finish its task beside the new
        # leader's); operator Jobs keep running for the new leader to adopt.
        log.error("lost the engine lease while running; exiting so that only the new leader schedules")
        self.on_lost()

    def _lead(self) -> None:
        """Start the leader's components beside the renewals (recovery may take a while)."""
        self.leader_since = time.time()
        self._starting = threading.Thread(target=self._start_components, name="leader-start", daemon=True)
        self._starting.start()

    def _start_components(self) -> None:
        t0 = time.monotonic()
        try:
            for name, comp in self.make_components().items():
                if self._stop.is_set():
                    break
                comp.start()
                self.components[name] = comp
                log.info("leader: component %s started", name)
        except Exception:  # noqa: BLE001 — a leader without its engine must not keep the Lease
            log.exception("leader: a component failed to start; exiting so that another replica leads")
            self.on_lost()
            return
        self.takeover_seconds = round(time.monotonic() - t0, 3)

    def _step_down(self) -> None:
        """Stop the leader's components in reverse order (the engine leaves operators running)."""
        if self._starting is not None:
            self._starting.join()
        for name in reversed(list(self.components)):
            try:
                self.components.pop(name).stop()
                log.info("leader: component %s stopped", name)
            except Exception:
                log.exception("leader: component %s did not stop cleanly", name)
        self.leader_since = None


__all__ = ["LeaderElected", "lease_namespace"]
