"""The README's main job, through the real commands: `claractl init` the ct-segmentation blueprint,
`claractl apply` it on the local target, send a held-out phantom CT with dcmtk `storescu` as PACS1,
and receive the DICOM SEG at a dcmtk `storescp` destination; the SEG references the source series
and matches the phantom's truth (Dice ≥ 0.9 per organ)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
from phantom import LABELS, generate_phantom, write_study  # noqa: E402
from seg_report import report  # noqa: E402

ENV = {**os.environ, "TCP_NODELAY": "1", "CI": "true"}


def claractl(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "claractl", "-C", str(project), *args],
                          capture_output=True, text=True, env=ENV, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"claractl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def project(tmp_path):
    """The blueprint with every port moved to a free one, so the test never meets a running demo."""
    root = tmp_path / "project"
    subprocess.run([sys.executable, "-m", "claractl", "init", str(root), "--blueprint", "ct-segmentation"],
                   check=True, capture_output=True, env=ENV)
    ports = {name: free_port() for name in ("api", "clara", "dicom", "http", "grpc", "render", "pacs")}
    text = (root / "clara.yaml").read_text()
    text = text.replace("api-port: 8765", f"api-port: {ports['api']}")
    text = text.replace("grpc-port: 50051", f"grpc-port: {ports['clara']}")
    text = text.replace("port: 11112", f"port: {ports['dicom']}")
    text = text.replace("triton: {enabled: true}",
                        f"triton: {{enabled: true, http-port: {ports['http']}, grpc-port: {ports['grpc']}}}")
    text = text.replace("port: 8080", f"port: {ports['render']}")
    text = text.replace("port: 4242", f"port: {ports['pacs']}")
    (root / "clara.yaml").write_text(text)
    yield root, ports
    claractl(root, "destroy", "--auto-approve", check=False)
    claractl(root, "platform", "stop", check=False)


@pytest.fixture
def pacs(tmp_path, project):
    _, ports = project
    received = tmp_path / "pacs"
    received.mkdir()
    proc = subprocess.Popen(["/usr/bin/storescp", "--aetitle", "PACS1", "--output-directory", str(received),
                             "--filename-extension", ".dcm", str(ports["pacs"])], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield received
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def test_ct_study_in_segmentation_back_at_the_pacs(project, pacs, tmp_path):
    root, ports = project
    assert "Plan: 5 to add" in claractl(root, "plan").stdout
    claractl(root, "apply", "--auto-approve")
    assert claractl(root, "plan", "--detailed-exitcode").returncode == 0     # converged

    phantom = generate_phantom(seed=3)                                       # held out from training
    info = write_study(phantom, tmp_path / "study")
    send = subprocess.run(["/usr/bin/storescu", "-aet", "PACS1", "-aec", "ORGANSEG", "+sd", "127.0.0.1",
                           str(ports["dicom"]), str(tmp_path / "study" / "dicom")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert send.returncode == 0, send.stderr

    deadline = time.monotonic() + 240
    while not list(pacs.glob("*.dcm")) and time.monotonic() < deadline:
        time.sleep(0.5)
    jobs = json.loads(claractl(root, "jobs", "list", "-o", "json", "--state-dir", ".clara").stdout)
    received = list(pacs.glob("*.dcm"))
    assert len(received) == 1, f"no SEG at the PACS; jobs: {jobs}"

    seg = pydicom.dcmread(received[0])
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == info["study_instance_uid"]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == info["series_instance_uid"]
    assert [job["status"] for job in jobs] == ["HEALTHY"]                     # one series → one job
    scores = report(received[0], tmp_path / "study" / "dicom", tmp_path / "study" / "truth.nii.gz", list(LABELS))
    assert set(scores) == {"liver", "spleen", "kidney"}
    assert all(value >= 0.9 for value in scores.values()), scores
