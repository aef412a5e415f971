"""The example GitHub Actions workflow's claractl steps, run as written against a local platform."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.plan.integration import make_env

WORKFLOW = Path(__file__).parents[2] / "examples" / "github-actions" / "claractl.yml"


def step(job: str, name: str) -> str:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return next(s["run"] for s in doc["jobs"][job]["steps"] if s.get("name") == name)


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.stop()


def run_step(env, job: str, name: str, **extra: str) -> subprocess.CompletedProcess:
    gh = {"GITHUB_OUTPUT": str(env.root / "gh-output"), "GITHUB_STEP_SUMMARY": str(env.root / "gh-summary")}
    for f in gh.values():
        Path(f).touch()
    wf_env = yaml.safe_load(WORKFLOW.read_text())["env"]
    full = {**os.environ, **{k: v for k, v in wf_env.items() if "${{" not in str(v)}, **gh, **extra}
    return subprocess.run(["bash", "-e", "-c", step(job, name)], cwd=env.root, env=full,
                          capture_output=True, text=True, timeout=300)


def test_pull_request_plan_step_then_merge_apply_step_with_stale_fallback(env):
    env.write()
    r = run_step(env, "plan", "Validate")
    assert r.returncode == 0, r.stderr
    r = run_step(env, "plan", "Plan")
    assert r.returncode == 0, r.stderr
    assert "changes=true" in (env.root / "gh-output").read_text()
    assert "Plan: 5 to add, 0 to change, 0 to destroy." in (env.root / "plan.md").read_text()
    assert json.loads((env.root / "plan.bin").read_text())["summary"]["has_changes"] is True

    r = run_step(env, "apply", "Apply", PLAN="plan.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Apply complete: 5 changes applied." in r.stdout

    # Another change merged meanwhile: the reviewed plan is stale → a fresh plan is applied.
    env.write(priority="higher")
    r = run_step(env, "apply", "Apply", PLAN="plan.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plan is stale" in r.stderr and "applying a fresh plan" in r.stdout
    assert env.get("/ae-titles/HELLO")["priority"] == "higher"

    r = run_step(env, "plan", "Plan")
    assert r.returncode == 0 and "changes=false" in (env.root / "gh-output").read_text().splitlines()[-1]


def test_plan_step_fails_the_job_on_an_error(env):
    env.write()
    (env.root / "clara.yaml").write_text((env.root / "clara.yaml").read_text().replace("pipelines: [hello]",
                                                                                       "pipelines: [nope]"))
    r = run_step(env, "plan", "Plan")
    assert r.returncode == 1 and "nope" in r.stderr
