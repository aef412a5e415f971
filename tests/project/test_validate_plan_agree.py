"""`validate` and `plan` agree (issue 17): every project validate accepts also plans on the local
target without an input error.

Hypothesis writes whole projects from plausible values — AE titles from all of ASCII and beyond,
host names and addresses, ports, names, model configs, operator graphs, placeholders — so that
many are valid and many are not. For each one validate accepts, plan's own code runs on it:
`make_plan` of the local target (check, desired state with model digests and config summaries,
diff, order), the platform settings the first apply would write, and every plan format. The live
state it reads is empty, as before a first apply; a second test plans a few against a running
platform through the real `claractl plan`.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from claractl.plan import ActualState
from claractl.plan.render import render_json, render_markdown, render_text
from claractl.platform.config import PlatformConfig
from claractl.project import load_project
from claractl.project.check import check_file
from claractl.targets.base import make_plan
from claractl.targets.local import LocalTarget, config_with_services
from tests.ports import free_port

from .conftest import MODEL_CONFIG, write_model_dir

settings.register_profile("validate-plan", max_examples=80, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("validate-plan-long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile(os.environ.get("CLARACTL_AGREE_PROFILE", "validate-plan"))

def mostly(valid, invalid):
    """Valid values about 19 times in 20: a project has ~30 of them, and a fair share must stay
    valid. (Not 0 for invalid: hypothesis draws the simplest integer, 0, far more than 1 in 20.)"""
    return st.integers(0, 19).flatmap(lambda k: invalid if k == 7 else valid)


AE_CHARS = string.printable[:95].replace("\\", "")
ae_titles = mostly(st.text(st.sampled_from(AE_CHARS), min_size=1, max_size=16).filter(str.strip),
                   st.sampled_from(["PACSé", "A\\B", "TAB\tX", "    ", "SEVENTEEN-CHARS-X"]))
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,11}", fullmatch=True)
hosts = mostly(st.one_of(st.ip_addresses().map(str), st.sampled_from(["localhost", "pacs.example.org", "PACS_01"]),
                         st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z][a-z0-9]{0,7}){0,2}", fullmatch=True)),
               st.sampled_from(["999.0.0.1", "-x", "a..b", "host name"]))
ports = mostly(st.integers(1, 65535), st.sampled_from([0, 65536]))
positive = mostly(st.one_of(st.integers(1, 86400), st.floats(1e-6, 86400)), st.sampled_from([0, -1]))


@st.composite
def model_config(draw, name: str) -> str:
    text = MODEL_CONFIG.format(name=draw(mostly(st.sampled_from([name, ""]), st.sampled_from([name.upper() + "x", "other"]))))
    text = text.replace('platform: "onnxruntime_onnx"', draw(mostly(
        st.sampled_from(['platform: "onnxruntime_onnx"', 'backend: "onnxruntime"', ""]), st.just('platform: "tensorrt_plan"'))))
    batch = draw(mostly(st.integers(0, 8), st.just(-1)))
    dims = draw(mostly(st.lists(st.sampled_from([-1, 1, 2, 4, 16]), min_size=1, max_size=3),
                       st.lists(st.integers(-3, 0), max_size=2)))
    text = text.replace("max_batch_size: 0", f"max_batch_size: {batch}")
    text = text.replace("dims: [ 1, 4 ]", f"dims: [ {', '.join(map(str, dims))} ]", 1)
    text += draw(mostly(st.sampled_from(["", "version_policy: { all: {} }\n", "version_policy: { specific: { versions: [1] } }\n"]),
                        st.sampled_from(["version_policy: { latest: { num_versions: 0 } }\n", 'default_model_filename: "m.onnx"\n',
                                         "max_batch_size: }\n"])))
    return text


@st.composite
def pipeline(draw, name: str, model_names: list[str]) -> dict:
    op_names = draw(st.lists(names, min_size=1, max_size=3, unique_by=str.lower))
    parameters = draw(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
                                      st.one_of(st.none(), st.text(max_size=5), st.integers()), max_size=2))
    operators = []
    for i, op_name in enumerate(op_names):
        source = draw(st.sampled_from(op_names[:i] or [None]))
        argument = draw(mostly(st.sampled_from(["--a", *[f"${{{{ {p} }}}}" for p in parameters]]), st.just("${{ NOPE }}")))
        op: dict = {"name": op_name,
                    "container": {"image": draw(st.sampled_from(["claractl/dicom-reader", "claractl/ai-inference"])),
                                  "tag": draw(st.sampled_from(["0.1", 1, "latest"])), "command": ["python", "-m", "x", argument]},
                    "input": [{"from": source, "path": "/input"} if source else {"path": "/input"}],
                    "output": [{"path": "/output"}]}
        if draw(st.booleans()):
            op["requests"] = {"cpu": draw(positive), "memory": draw(st.integers(1, 10**6)), "gpu": draw(st.integers(0, 2))}
        if model_names and draw(st.booleans()):
            op["models"] = [{"name": draw(mostly(st.sampled_from(model_names), st.just("missing")))}]
        if draw(st.booleans()):
            op["timeout"] = draw(positive)
        operators.append(op)
    return {"api-version": draw(mostly(st.sampled_from(["0.6.0", "0.7.0"]), st.just("0.4.0"))), "name": name,
            "parameters": parameters, "operators": operators}


@st.composite
def projects(draw) -> tuple[dict, dict[str, str]]:
    """A project (as data) and its other files (path → text)."""
    files: dict[str, str] = {}
    model_names = draw(st.lists(names, max_size=2, unique_by=str.lower))
    for m in model_names:
        files[f"models/{m}/config.pbtxt"] = draw(model_config(m))
    pipeline_names = draw(st.lists(names, min_size=1, max_size=2, unique_by=str.lower))
    for p in pipeline_names:
        files[f"pipelines/{p}.yaml"] = yaml.safe_dump(draw(pipeline(p, model_names)), sort_keys=False)
    destinations = [{"name": n, "ae-title": draw(ae_titles), "host": draw(hosts), "port": draw(ports)}
                    for n in draw(st.lists(names, max_size=2, unique_by=str.lower))]
    # Services of one machine need distinct ports; now and then two share one.
    api, dicom, http, grpc, render, clara = draw(mostly(st.lists(st.integers(1, 65535), min_size=6, max_size=6, unique=True),
                                                        st.lists(st.sampled_from([8000, 8001]), min_size=6, max_size=6)))
    triton: dict = {"enabled": draw(st.booleans()), "http-port": http, "grpc-port": grpc}
    if draw(st.integers(0, 4)) == 0:
        triton["url"] = draw(mostly(st.sampled_from(["triton:8001", "http://t:8000", "https://[::1]:8443/v2"]),
                                    st.sampled_from(["ftp://t", "t:0"])))
    project = {
        "apiVersion": "claractl/v1", "kind": "Project", "name": draw(st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", fullmatch=True)),
        "target": {"type": "local", "local": {"state-dir": draw(mostly(st.sampled_from([".clara", "state/x"]), st.just("../elsewhere")))}},
        "services": {
            "platform": {"api-host": draw(hosts), "api-port": api, "grpc-port": clara, "workers": draw(st.integers(1, 256)),
                         "database": draw(mostly(st.sampled_from(["sqlite", "sqlite:///db.sqlite", "postgresql://clara@db/clara"]),
                                                 st.just("sqlite:///../../x.db"))),
                         "job-timeout": draw(positive)},
            "dicom-adapter": {"enabled": draw(st.booleans()), "host": draw(hosts), "port": dicom,
                              "ae-title": draw(ae_titles), "max-associations": draw(st.integers(1, 1000)),
                              "storage": {"watermark-percent": draw(st.integers(1, 100))}},
            "triton": triton,
            "render": {"enabled": draw(st.booleans()), "port": render},
        },
        "models": [{"name": m, "path": f"models/{m}"} for m in model_names],
        "pipelines": [{"name": p, "file": f"pipelines/{p}.yaml",
                       **({"export": [{"agent": "ClaraSCU", "destinations": [d["name"] for d in destinations]}]}
                          if destinations and draw(st.booleans()) else {})} for p in pipeline_names],
        "ae-titles": [{"ae-title": t, "pipelines": [draw(st.sampled_from(pipeline_names))],
                       "group-by": draw(mostly(st.sampled_from(["0020,000D", "0020,000e", "0008,0050"]), st.just("zz"))),
                       "timeout": draw(positive), "priority": draw(mostly(st.sampled_from(["normal", "immediate"]), st.just("urgent")))}
                      for t in draw(st.lists(ae_titles, max_size=2, unique_by=lambda t: t.strip().lower()))],
        "sources": [{"name": n, "ae-title": draw(ae_titles), "host": draw(hosts)}
                    for n in draw(st.lists(names, max_size=2, unique_by=str.lower))],
        "destinations": destinations,
    }
    return project, files


def write(root: Path, project: dict, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        if relative.endswith("config.pbtxt"):
            write_model_dir(path.parent, text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (root / "clara.yaml").write_text(yaml.safe_dump(project, sort_keys=False, allow_unicode=True))
    return root / "clara.yaml"


class BeforeFirstApply(LocalTarget):
    """The local target before any apply: no platform has run, so the live state is empty. What
    the first apply would start it with is computed and saved, as ensure_running does."""

    def read_state(self) -> ActualState:
        config_with_services(PlatformConfig(state_dir=str(self.state_dir)), self.service_fields(self.project)).save()
        return ActualState()


@settings(PROFILE)
@given(generated=projects())
def test_every_project_validate_accepts_plans_without_an_input_error(generated):
    project_data, files = generated
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), project_data, files)
        if not check_file(path).ok:
            return
        plan = make_plan(BeforeFirstApply(load_project(path)))
        assert plan.has_changes
        for render in (render_text, render_markdown, render_json):
            assert render(plan)


def test_the_generator_reaches_valid_and_invalid_projects():
    """The agreement above is only worth something if validate accepts a fair share of them."""
    seen = {True: 0, False: 0}

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated=projects())
    def sample(generated):
        with tempfile.TemporaryDirectory() as tmp:
            seen[check_file(write(Path(tmp), *generated)).ok] += 1

    sample()
    assert seen[True] >= 8 and seen[False] >= 8, seen


@pytest.fixture(scope="module")
def running_platform(tmp_path_factory):
    """A local platform on free ports, started by applying a small project (its state dir is
    reused by every project planned against it)."""
    root = tmp_path_factory.mktemp("agree")
    services = {"platform": {"api-port": free_port()}, "dicom-adapter": {"port": free_port()},
                "triton": {"enabled": False}, "render": {"enabled": False}}
    project = {"apiVersion": "claractl/v1", "kind": "Project", "name": "agree", "services": services}
    (root / "clara.yaml").write_text(yaml.safe_dump(project))
    claractl = [sys.executable, "-m", "claractl", "-C", str(root)]
    env = {**os.environ, "CI": "true"}
    try:
        done = subprocess.run(claractl + ["apply", "--auto-approve"], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        yield root, services
    finally:
        subprocess.run(claractl + ["platform", "stop", "--state-dir", str(root / ".clara")], capture_output=True)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(generated=projects())
def test_accepted_projects_plan_against_a_running_platform(running_platform, generated):
    root, services = running_platform
    project_data, files = generated
    state_dir = str(root / ".clara")            # the running platform's, allowed explicitly
    project_data["target"] = {"type": "local", "local": {"state-dir": state_dir}}
    project_data["allow-paths"] = [state_dir]
    project_data["services"] = services
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), project_data, files)
        assume(check_file(path).ok)
        done = subprocess.run([sys.executable, "-m", "claractl", "-C", tmp, "plan", "--detailed-exitcode"],
                              capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr          # all its objects are to be created
