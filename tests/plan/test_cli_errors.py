"""CLI errors: exit 1 with a clear message, never a traceback (no platform needed)."""

import json

from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.plan import desired_state, write_plan
from tests.plan.conftest import build_project
from tests.plan.helpers import converged, plan_for


def run(*args):
    return CliRunner().invoke(app, list(args), env={"CI": "true"})


def test_missing_project_file(tmp_path):
    r = run("-C", str(tmp_path), "plan")
    assert r.exit_code == 1 and "clara.yaml: project file not found" in r.output
    assert "Traceback" not in r.output


def test_invalid_project_names_file_line_and_key(tmp_path):
    (tmp_path / "clara.yaml").write_text("apiVersion: claractl/v1\nkind: Project\nname: x\nbogus: 1\n")
    r = run("-C", str(tmp_path), "plan")
    assert r.exit_code == 1 and "clara.yaml:4" in r.output and "bogus" in r.output


def test_show_renders_a_saved_plan_and_rejects_other_files(tmp_path):
    project = build_project(tmp_path)
    actual = converged(desired_state(project), project.name)
    actual.objects["ae-title.ORGANSEG"].fields["timeout"] = 9.0
    path = write_plan(plan_for(project, actual), tmp_path / "p.json")
    r = run("show", str(path))
    assert r.exit_code == 0 and "~ timeout: 9.0 → 5.0" in r.output
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in r.output
    r = run("show", str(path), "-o", "json")
    assert json.loads(r.output)["summary"]["change"] == 1
    (tmp_path / "junk").write_text("not json")
    r = run("show", str(tmp_path / "junk"))
    assert r.exit_code == 1 and "not a claractl plan file" in r.output
    r = run("show", str(tmp_path / "missing"))
    assert r.exit_code == 1 and "plan file not found" in r.output


def test_bad_lock_timeout_is_a_usage_error(tmp_path):
    r = run("-C", str(tmp_path), "apply", "--lock-timeout", "soon")
    assert r.exit_code == 2 and "not a duration" in r.output
