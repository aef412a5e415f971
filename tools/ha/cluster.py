"""The cluster side of a high-availability run: a project that relays every study to a PACS
(one image-less operator that copies its input after a pause, then a DICOM export), the PACS
(dcmtk storescp on this machine, one file per reception), and the faults: which pod leads the
engine, killing a container the way a crash does.

Needs the test cluster's layout (pods reach this machine at HOST_FROM_PODS; containerd's socket
in the cluster's state dir for a real kill -9; elsewhere a forced pod deletion stands in).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pydicom

import claractl

HOST_FROM_PODS = os.environ.get("CLARA_TEST_HOST_FROM_PODS", "10.42.0.1")
KUBE_STATE = Path(os.environ.get("CLARA_KUBE_DIR") or Path(os.environ.get("TMPDIR", "/tmp")) / "claractl-kube")
CALLED_AE, CALLING_AE = "RELAY", "MODALITY1"
LEASE = "clara-platform-engine-leader"

RELAY_PIPELINE = """api-version: 0.6.0
name: relay
operators:
- name: relay
  container: {{image: claractl/platform, tag: "{version}", command: [sh, -c, "sleep {pause}; cp /input/*.dcm /output/"]}}
  input: [{{path: /input}}]
  output: [{{path: /output}}]
  requests: {{cpu: 0.05, memory: 64}}
"""


def write_project(folder: Path, namespace: str, pacs_port: int, *, high_availability: bool,
                  pause: float = 4.0, max_associations: int = 25) -> Path:
    """A project on `namespace`: every study sent to RELAY becomes a job whose operator (in the
    platform image) waits `pause` s and copies it; the copy is exported to the PACS. Small
    requests (a 2-CPU node)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipelines").mkdir(exist_ok=True)
    (folder / "pipelines" / "relay.yaml").write_text(RELAY_PIPELINE.format(pause=pause, version=claractl.__version__))
    platform = "workers: 4, resources: {requests: {cpu: 50m, memory: 128Mi}}"
    if high_availability:
        platform += ", high-availability: true, database: postgresql"
    (folder / "clara.yaml").write_text(f"""apiVersion: claractl/v1
kind: Project
name: ha-relay
target: {{type: kubernetes, kubernetes: {{namespace: {namespace}}}}}
services:
  platform: {{{platform}}}
  dicom-adapter: {{ae-title: CLARA, max-associations: {max_associations}{', drain-seconds: 120' if high_availability else ''}}}
  triton: {{enabled: false}}
  render: {{enabled: true}}
pipelines:
  - name: relay
    file: pipelines/relay.yaml
    export: [{{agent: ClaraSCU, destinations: [pacs]}}]
ae-titles:
  - {{ae-title: {CALLED_AE}, pipelines: [relay], timeout: 2}}
sources:
  - {{name: modality, ae-title: {CALLING_AE}, host: {HOST_FROM_PODS}}}
destinations:
  - {{name: pacs, ae-title: PACS1, host: {HOST_FROM_PODS}, port: {pacs_port}}}
""")
    return folder


class Pacs:
    """dcmtk storescp on every address of this machine; each reception its own file (+uf), so a
    result delivered twice is seen twice."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["/usr/bin/storescp", "--aetitle", "PACS1", "--output-directory", str(folder),
                                      "+uf", "--filename-extension", ".dcm", str(port)],
                                     env={**os.environ, "TCP_NODELAY": "1"}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)

    def received(self) -> Counter:
        """SOP Instance UID → how many times it arrived."""
        return Counter(str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
                       for p in self.folder.glob("*.dcm"))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def leader_pod(rest, namespace: str) -> str | None:
    """The engine pod holding the Lease (its holder identity is `<pod name>/<process id>`)."""
    from claractl.kube.client import KINDS
    lease = rest.get(KINDS["Lease"], namespace, LEASE)
    holder = ((lease or {}).get("spec") or {}).get("holderIdentity") or ""
    return holder.split("/", 1)[0] or None


def kill_container(rest, namespace: str, pod: str, lose_node: bool = False) -> str:
    """kill -9 of the pod's container process, as an out-of-memory kill or a crash does (the pod
    stays; its container restarts). `lose_node`: as when the pod's node is lost — the process is
    frozen (SIGSTOP: it can neither renew nor give up anything, nor see SIGTERM) and the pod
    deleted at once; a new pod replaces it. Without access to the node's containerd both are a
    pod deletion with no grace (the process then still gets SIGTERM)."""
    from claractl.kube.client import KINDS
    live = rest.get(KINDS["Pod"], namespace, pod)
    container_id = (((live or {}).get("status") or {}).get("containerStatuses") or [{}])[0].get("containerID", "")
    socket = KUBE_STATE / "containerd" / "containerd.sock"
    done = f"forced deletion of {pod}"
    if container_id.startswith("containerd://") and socket.exists():
        tasks = subprocess.run(["ctr", "--address", str(socket), "-n", "k8s.io", "tasks", "ls"], capture_output=True,
                               text=True, check=True).stdout
        cid = container_id.split("//", 1)[1]
        pid = next(int(line.split()[1]) for line in tasks.splitlines()[1:] if line.split()[0] == cid)
        os.kill(pid, signal.SIGSTOP if lose_node else signal.SIGKILL)
        if not lose_node:
            return f"kill -9 {pid} (container of {pod})"
        done = f"SIGSTOP {pid} and forced deletion of {pod}"
    rest.call("DELETE", f"{KINDS['Pod'].collection(namespace)}/{pod}", f"delete Pod/{pod}",
              body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
    return done


def wait_for(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
