"""Secret values never appear in text, JSON or markdown output, plan files or logs."""

import logging

from claractl.plan import ActualState, desired_state, read_plan, to_json, write_plan
from claractl.plan.render import render_markdown, render_text
from claractl.project import load_project
from tests.plan.helpers import converged, plan_for
from tests.plan.projects import write_project

PASSWORD = "s3cr3t-Pa55word-do-not-print"
TOKEN = "tok-0123456789abcdef-never-shown"


def test_secrets_from_env_and_sensitive_keys_are_redacted_everywhere(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CLARA_TEST_DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("CLARA_TEST_TOKEN", TOKEN)
    path = write_project(tmp_path, database="postgresql://clara:${env:CLARA_TEST_DB_PASSWORD}@db.example/clara")
    text = path.read_text().replace("platform: {", "platform: {api-token: \"${env:CLARA_TEST_TOKEN}\", ")
    path.write_text(text)
    caplog.set_level(logging.DEBUG)
    project = load_project(path)

    outputs = []
    created = plan_for(project, ActualState())
    # Drift: the target holds another password and token → an update that must not show either.
    actual = converged(desired_state(project), project.name)
    actual.objects["service.platform"].fields["database"] = "postgresql://clara:old-pw-XYZ@db.example/clara"
    actual.objects["service.platform"].fields["api-token"] = "old-token-XYZ"
    updated = plan_for(project, actual)
    assert [c.address for c in updated.pending] == ["service.platform"]
    for plan in (created, updated):
        outputs += [render_text(plan, verbose=True).plain, to_json(plan), render_markdown(plan)]
        saved = write_plan(plan, tmp_path / "plan.json")
        outputs.append(saved.read_text())
        outputs.append(to_json(read_plan(saved)))
    outputs.append(caplog.text)
    outputs.append(repr(project))
    blob = "\n".join(outputs)
    for secret in (PASSWORD, TOKEN, "old-pw-XYZ", "old-token-XYZ"):
        assert secret not in blob
    assert "(sensitive)" in render_text(updated).plain
