"""The Clara API tests' platform and client runner.

NVIDIA's client (nvidia-clara-client 0.8.1.7) is the peer: client code runs as scripts in the
environment Clara users run it in, `.venv-clara-client` (scripts/clara-client-env.sh: the client
with protobuf < 4, which its 2020 generated modules need; claractl's own venv has protobuf >= 4),
or the Python named by CLARA_CLIENT_PYTHON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import claractl
from claractl.platform.client import PlatformClient
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PYTHON = os.environ.get("CLARA_CLIENT_PYTHON") or str(ROOT / ".venv-clara-client" / "bin" / "python")
CLIENT_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def client_python() -> str:
    if not Path(CLIENT_PYTHON).exists():
        raise AssertionError(f"{CLIENT_PYTHON} is missing: run scripts/clara-client-env.sh (NVIDIA's client "
                             "with protobuf < 4) or set CLARA_CLIENT_PYTHON")
    return CLIENT_PYTHON

PREAMBLE = '''\
import io, json, sys, time
from nvidia_clara import JobsClient, PipelinesClient, PayloadsClient, ModelsClient, ClaraClient
import nvidia_clara.job_types as job_types
import nvidia_clara.model_types as model_types
import nvidia_clara.payload_types as payload_types
import nvidia_clara.pipeline_types as pipeline_types
ip, port = "{ip}", "{port}"
jobs = JobsClient(target=ip, port=port)
pipelines = PipelinesClient(target=ip, port=port)
payloads = PayloadsClient(target=ip, port=port)
models = ModelsClient(target=ip, port=port)
clara = ClaraClient(target=ip, port=port)

def error(fn, *args, **kw):
    """The message of the exception a client call raises (None when it does not raise)."""
    try:
        fn(*args, **kw)
    except Exception as exc:
        return f"{{type(exc).__name__}}: {{exc}}"
    return None

def wait_stopped(job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = jobs.get_status(job_id=job_id)
        if status.job_state == job_types.JobState.Stopped.value:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {{job_id}} did not stop")

def out(value):
    print(json.dumps(value, default=str))
'''


@dataclass
class ClaraPlatform:
    platform: Platform
    config: PlatformConfig
    rest: PlatformClient

    @property
    def port(self) -> int:
        return self.config.api.grpc_port

    def run(self, body: str, cwd: Path | None = None, timeout: float = 240, client_token: str | None = None,
            **values) -> object:
        """Run client code (after PREAMBLE) in its own Python, with CLARA_API_TOKEN=client_token;
        returns the JSON it printed last."""
        return run_script(client_code(body, "127.0.0.1", self.port, **values), cwd=cwd, timeout=timeout,
                          token=client_token)

    def stop(self) -> None:
        self.rest.close()
        self.platform.stop()


def client_code(body: str, ip: str, port: int | str, **values) -> str:
    """PREAMBLE (clients of the platform at ip:port, helpers) + body with `values` filled in."""
    return PREAMBLE.format(ip=ip, port=port) + textwrap.dedent(body).format(**values)


def run_client(code: str, cwd: Path | None = None, timeout: float = 240, token: str | None = None) -> str:
    """Run a client script in its own Python; its stdout (the test fails when it exits non-zero).
    `token`: CLARA_API_TOKEN for the client environment's token hook (claractl_clara_token);
    None: the variable is unset."""
    env = {k: v for k, v in CLIENT_ENV.items() if k != "CLARA_API_TOKEN"}
    if token is not None:
        env["CLARA_API_TOKEN"] = token
    done = subprocess.run([client_python(), "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"client script failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_script(code: str, cwd: Path | None = None, timeout: float = 240, token: str | None = None) -> object:
    """Run a client script; the JSON it printed last."""
    lines = run_client(code, cwd, timeout, token).strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def check_workflow_results(results: Path) -> None:
    """What scripts/clara_docs_workflow.py downloaded from a run of ct_pipeline on make_ct_series(slices=6, size=32)."""
    summary = json.loads((results / "summary.json").read_text())
    assert summary["label"] == "from-start-job"
    assert list(summary["volumes"].values()) == [[32, 32, 6]]
    assert (results / next(iter(summary["volumes"]))).stat().st_size > 0       # the NIfTI itself
    assert "summary: 1 volume(s), label from-start-job" in (results / "summary.log").read_text()
    assert "operator dicom-reader starts" in (results / "dicom-reader.log").read_text()


DOCS_WORKFLOW = Path(__file__).parent / "scripts" / "clara_docs_workflow.py"


def docs_workflow(ip: str, port: int | str) -> str:
    """scripts/clara_docs_workflow.py with its two address lines pointed at ip:port (nothing else
    changes: checked here)."""
    original = DOCS_WORKFLOW.read_text()
    text, n_ip = re.subn(r'^clara_ip_address = ".*"$', f'clara_ip_address = "{ip}"', original, flags=re.M)
    text, n_port = re.subn(r'^clara_port = ".*"$', f'clara_port = "{port}"', text, flags=re.M)
    assert (n_ip, n_port) == (1, 1)
    changed = [old for old, new in zip(original.splitlines(), text.splitlines()) if old != new]
    assert changed == ['clara_ip_address = "10.0.0.1"', 'clara_port = "31851"']
    return text


def start_platform(state_dir: Path, host: str = "127.0.0.1", **engine) -> ClaraPlatform:
    config = PlatformConfig(state_dir=str(state_dir))
    config.api.host = host
    config.api.port, config.api.grpc_port = free_port(), free_port()
    config.dicom.enabled = config.inference.enabled = config.render.enabled = False
    for key, value in engine.items():
        setattr(config.engine, key, value)
    platform = Platform(config)
    platform.start()
    return ClaraPlatform(platform, config, PlatformClient(config.api_url, token=platform.token))


SUMMARY_OPERATOR = '''\
"""Test operator: one line per NIfTI volume it receives (shape), a label from the job's variables."""
import json, sys
from pathlib import Path
import nibabel as nib
src, dst, label = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
volumes = {p.name: list(nib.load(p).shape) for p in sorted(src.glob("*.nii.gz"))}
(dst / "summary.json").write_text(json.dumps({"label": label, "volumes": volumes}))
print(f"summary: {len(volumes)} volume(s), label {label}")
'''


def ct_pipeline(tmp: Path, name: str = "ct-volume", inline: bool = False) -> Path:
    """A PDL file: the bundled dicom-reader, then a summary operator reading its output — a script
    of this machine, or (`inline`, for a cluster) its code in the command, run in the platform's
    image (which has nibabel), each asking for a quarter core (Clara's default of 2 cores never fits
    a 2-core node beside the platform)."""
    script = tmp / "summary_operator.py"
    script.write_text(SUMMARY_OPERATOR)
    label = "${{ LABEL }}"
    summary = {"image": "claractl/platform", "tag": claractl.__version__,
               "command": ["python", "-c", SUMMARY_OPERATOR, "/in", "/out", label]} if inline else \
        {"image": "claractl/summary", "command": ["python", str(script), "/in", "/out", label]}
    requests = '{"cpu": 0.25, "memory": 512}' if inline else "{}"
    path = tmp / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        api-version: 0.4.0
        name: {name}
        parameters:
          LABEL: default-label
        operators:
        - name: dicom-reader
          container:
            image: claractl/dicom-reader
            tag: "0.1.0"
            command: ["python", "-m", "claractl_operators.dicom_reader", "--input", "/input", "--output", "/output"]
          input:
          - path: /input
          output:
          - path: /output
          requests: {requests}
        - name: summary
          container: {json.dumps(summary)}
          input:
          - from: dicom-reader
            path: /in
          output:
          - path: /out
          requests: {requests}
        """))
    return path


COPY_PIPELINE = textwrap.dedent("""\
    api-version: 0.4.0
    name: copier
    operators:
    - name: copy
      container: {image: claractl/copy, command: [python, -c, "import shutil,sys,os; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True); open(os.path.join(sys.argv[2], 'job.txt'), 'w').write(os.environ['NVIDIA_CLARA_JOB_ID'])", /input, /output]}
      input: [{path: /input}]
      output: [{path: /output}]
    """)
