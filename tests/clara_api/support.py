"""The Clara API tests' platform and client runner.

NVIDIA's client (nvidia-clara-client 0.8.1.7) is the peer: client code runs as scripts in the
environment Clara users run it in, `.venv-clara-client` (scripts/clara-client-env.sh: the client
with protobuf < 4, which its 2020 generated modules need; claractl's own venv has protobuf >= 4),
or the Python named by CLARA_CLIENT_PYTHON.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

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
ip, port = "127.0.0.1", "{port}"
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

    def run(self, body: str, cwd: Path | None = None, timeout: float = 240, **values) -> object:
        """Run client code (after PREAMBLE) in its own Python; returns the JSON it printed last."""
        code = PREAMBLE.format(port=self.port) + textwrap.dedent(body).format(**values)
        return run_script(code, cwd=cwd, timeout=timeout)

    def stop(self) -> None:
        self.rest.close()
        self.platform.stop()


def run_client(code: str, cwd: Path | None = None, timeout: float = 240) -> str:
    """Run a client script in its own Python; its stdout (the test fails when it exits non-zero)."""
    done = subprocess.run([client_python(), "-c", code], cwd=cwd, env=CLIENT_ENV, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"client script failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_script(code: str, cwd: Path | None = None, timeout: float = 240) -> object:
    """Run a client script; the JSON it printed last."""
    lines = run_client(code, cwd, timeout).strip().splitlines()
    return json.loads(lines[-1]) if lines else None


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


def ct_pipeline(tmp: Path, name: str = "ct-volume") -> Path:
    """A PDL file: the bundled dicom-reader, then a summary operator reading its output."""
    script = tmp / "summary_operator.py"
    script.write_text(SUMMARY_OPERATOR)
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
        - name: summary
          container:
            image: claractl/summary
            command: ["python", "{script}", "/in", "/out", "${{{{ LABEL }}}}"]
          input:
          - from: dicom-reader
            path: /in
          output:
          - path: /out
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
