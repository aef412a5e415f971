"""A claractl process imports only what its command uses (issue 13).

Asserted on what real processes imported (their sys.modules at exit), never on time:
`--help` and `version` load none of the heavy libraries; `validate` adds YAML, JSON Schema and
protobuf (model configs); `plan` on the local target adds the HTTP client and rich, nothing of
the platform runtime. Every command module is also imported alone, so a module added to
COMMAND_MODULES later that imports something heavy at its top is named here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from claractl.cli.main import COMMAND_MODULES
from tests.ports import free_port

# What the platform runtime, DICOM, inference and Kubernetes need: no CLI command that only
# reads files or talks HTTP has a reason to load any of it.
RUNTIME = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "onnx", "onnxruntime", "pydicom", "pynetdicom",
           "highdicom", "numpy", "scipy", "nibabel", "kubernetes", "grpc", "psutil", "jinja2"}
# What reading and checking a project needs.
PROJECT_FILES = {"yaml", "jsonschema", "google"}
# What talking to the platform and printing tables needs.
CLIENT = {"httpx", "httpcore", "anyio", "rich"}

PROBE = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["PROBE_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "claractl"
from claractl.cli.main import run
run()
"""


def imported_by(tmp_path: Path, *args: str, expect: int = 0) -> set[str]:
    """Top-level packages a `claractl ARGS` process had imported when it exited."""
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PROBE_OUT": str(out), "CI": "true"})
    assert done.returncode == expect, done.stdout + done.stderr
    return {name.split(".")[0] for name in json.loads(out.read_text())}


@pytest.mark.parametrize("args", [["--help"], ["version"], ["jobs", "--help"], ["plan", "--help"]])
def test_help_and_version_load_nothing_heavy(tmp_path, args):
    loaded = imported_by(tmp_path, *args)
    assert not loaded & (RUNTIME | PROJECT_FILES | CLIENT), sorted(loaded & (RUNTIME | PROJECT_FILES | CLIENT))


def test_every_command_module_imports_only_typer_and_light_constants():
    probe = ("import json, sys\n"
             "out = {}\n"
             f"for name in {COMMAND_MODULES!r}:\n"
             "    before = set(sys.modules)\n"
             "    __import__('claractl.cli.' + name)\n"
             "    out[name] = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
             "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    heavy = {name: sorted(set(new) & (RUNTIME | PROJECT_FILES | CLIENT)) for name, new in json.loads(done.stdout).items()}
    assert heavy == {name: [] for name in COMMAND_MODULES}, "import these inside the command functions"


def test_validate_loads_only_what_reading_files_needs(tmp_path):
    project = tmp_path / "ct"
    subprocess.run([sys.executable, "-m", "claractl", "init", str(project), "--blueprint", "ct-segmentation"],
                   check=True, capture_output=True)
    loaded = imported_by(tmp_path, "-C", str(project), "validate")
    assert not loaded & (RUNTIME | CLIENT), sorted(loaded & (RUNTIME | CLIENT))
    assert {"yaml", "jsonschema"} <= loaded       # the probe saw a real validate


def test_validate_of_a_broken_project_loads_no_more(tmp_path):
    (tmp_path / "clara.yaml").write_text("apiVersion: claractl/v1\nkind: Project\nname: x\nmodels: 3\n")
    loaded = imported_by(tmp_path, "-C", str(tmp_path), "validate", expect=1)
    assert not loaded & (RUNTIME | CLIENT), sorted(loaded & (RUNTIME | CLIENT))


@pytest.fixture
def applied_blueprint(tmp_path):
    """The ct-segmentation blueprint on free ports, applied: its local platform runs."""
    project = tmp_path / "ct"
    claractl = [sys.executable, "-m", "claractl"]
    subprocess.run(claractl + ["init", str(project), "--blueprint", "ct-segmentation"], check=True, capture_output=True)
    path = project / "clara.yaml"
    data = yaml.safe_load(path.read_text())
    services = data["services"]
    services["platform"].update({"api-port": free_port(), "grpc-port": free_port()})
    services["dicom-adapter"]["port"] = free_port()
    services["triton"].update({"http-port": free_port(), "grpc-port": free_port()})
    services["render"]["port"] = free_port()
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        done = subprocess.run(claractl + ["-C", str(project), "apply", "--auto-approve"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "CI": "true"})
        assert done.returncode == 0, done.stdout + done.stderr
        yield project
    finally:
        subprocess.run(claractl + ["platform", "stop", "--state-dir", str(project / ".clara")], capture_output=True)


def test_plan_on_the_local_target_loads_no_platform_runtime(tmp_path, applied_blueprint):
    loaded = imported_by(tmp_path, "-C", str(applied_blueprint), "plan", "--detailed-exitcode")
    assert not loaded & RUNTIME, sorted(loaded & RUNTIME)
    assert "httpx" in loaded                      # it did read the platform
