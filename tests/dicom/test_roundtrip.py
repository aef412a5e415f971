"""Orthanc → our SCP → a pipeline on the real platform (engine) → register-results → our SCU → Orthanc.

Everything is configured through the platform API, as `apply` would do it.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

import httpx
import pydicom
import pytest
import yaml

from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from tests.dicom.conftest import PEER_ENV, free_port, wait_for

DERIVE = textwrap.dedent('''
    """Stand-in AI operator: a derived series (new UIDs) for every input instance."""
    import json, os, pathlib, pydicom
    from pydicom.uid import generate_uid
    src = pathlib.Path(json.loads(os.environ["NVIDIA_CLARA_INPUT_PATHS"])["/input"])
    dst = pathlib.Path(json.loads(os.environ["NVIDIA_CLARA_OUTPUT_PATHS"])["/output"])
    series = generate_uid()
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = series
        ds.SeriesDescription = "derived by roundtrip"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(dst / (ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
''')


@pytest.fixture
def stack(tmp_path):
    from claractl.platform.server import Platform
    config = PlatformConfig(state_dir=str(tmp_path / "state"))
    config.api.port = free_port()
    config.dicom.port, config.dicom.host = free_port(), "127.0.0.1"
    config.dicom.watermark_percent = 99.9
    config.inference.enabled = config.render.enabled = False
    config.root.mkdir(parents=True)
    http, dicom = free_port(), free_port()
    cfg = {"Name": "pacs", "StorageDirectory": str(tmp_path / "orthanc"), "IndexDirectory": str(tmp_path / "orthanc"),
           "HttpPort": http, "DicomPort": dicom, "DicomAet": "PACS1", "RemoteAccessAllowed": False,
           "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
           "Plugins": [], "DicomModalities": {"clara": ["ROUNDTRIP", "127.0.0.1", config.dicom.port]}}
    (tmp_path / "orthanc.json").write_text(json.dumps(cfg))
    orthanc = subprocess.Popen(["/usr/sbin/Orthanc", str(tmp_path / "orthanc.json")], env=PEER_ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pacs = httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=60)
    p = Platform(config)
    p.start()
    api = PlatformClient(config.api_url, token=p.token)
    try:
        def up():
            try:
                return pacs.get("/system").status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=30, interval=0.1)
        yield api, pacs, dicom, tmp_path
    finally:
        api.close()
        p.stop()
        pacs.close()
        orthanc.terminate()
        orthanc.wait(timeout=30)


def test_study_from_orthanc_runs_pipeline_and_result_returns(stack, ct5):
    api, pacs, pacs_port, tmp = stack
    script = tmp / "derive.py"
    script.write_text(DERIVE)
    pdl = {"api-version": "0.4.0", "name": "roundtrip", "operators": [
        {"name": "derive", "container": {"image": "claractl/derive", "tag": "1", "command": ["python", str(script)]},
         "input": [{"path": "/input"}], "output": [{"path": "/output"}],
         "requests": {"cpu": 0.25, "memory": 128}},
        {"name": "register-results", "container": {"image": "claractl/register-results", "tag": "1", "command": [
            "python", "-m", "claractl_operators.register_results", "--agent", "ClaraSCU",
            "--data", '["pacs"]', "--input", "/input"]},
         "input": [{"from": "derive", "path": "/input"}], "requests": {"cpu": 0.25, "memory": 128}},
    ]}
    api.put_pipeline("roundtrip", yaml.safe_dump(pdl, sort_keys=False))
    api.put_ae_title("ROUNDTRIP", ["roundtrip"], timeout=1.0)
    api.put_source("pacs", "PACS1", "127.0.0.1")
    api.put_destination("pacs", "PACS1", "127.0.0.1", pacs_port)
    for f in ct5:
        assert pacs.post("/instances", content=f.read_bytes()).status_code == 200
    (study,) = pacs.get("/studies").json()
    r = pacs.post("/modalities/clara/store", content=study)
    assert r.status_code == 200, r.text

    def returned():
        series = [pacs.get(f"/series/{s}").json() for s in pacs.get("/series").json()]
        derived = [s for s in series if s["MainDicomTags"].get("SeriesDescription") == "derived by roundtrip"]
        return derived and len(derived[0]["Instances"]) == 5 and derived[0]
    derived = wait_for(returned, timeout=90, interval=0.5)
    assert derived["ParentStudy"] == study            # same study, new series, back in the PACS
    inst = pacs.get(f"/instances/{derived['Instances'][0]}/file").content
    ds = pydicom.dcmread(__import__("io").BytesIO(inst))
    assert ds.StudyInstanceUID == pydicom.dcmread(ct5[0], stop_before_pixels=True).StudyInstanceUID
    status = httpx.get(api.base_url + "/api/v1/dicom/status").json()
    assert status["instances_received"] == 5 and status["jobs_created"] == 1
    assert status["export"]["tasks_succeeded"] == 1 and status["export"]["files_sent"] == 5
