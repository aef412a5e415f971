"""Golden tests of the text and markdown renderers; JSON validated against its schema.

Regenerate goldens after an intended change: CLARACTL_UPDATE_GOLDEN=1 pytest tests/plan/test_render.py
"""

import json
import os
from pathlib import Path

import jsonschema
import pytest

from claractl.plan import ActualObject, desired_state, plan_from_dict, plan_to_dict, to_json
from claractl.plan.render import render_markdown, render_text
from tests.plan.conftest import build_project
from tests.plan.helpers import converged, plan_for

GOLDEN = Path(__file__).parent / "golden"
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "plan-output.schema.json").read_text())


def mixed_plan(tmp_path):
    """One of each: create, update (nested), replace, delete; plus an unmanaged object."""
    old = build_project(tmp_path / "p")
    actual = converged(desired_state(old), old.name)
    del actual.objects["destination.pacs-main"]                                    # → create
    actual.objects["ae-title.ORGANSEG"].fields["priority"] = "higher"               # → update (drift)
    p = actual.objects.pop("pipeline.ct-organ-seg")
    actual.add(ActualObject("pipeline.CT-ORGAN-SEG", p.fields, old.name))          # → replace
    actual.add(ActualObject("source.old-pacs", {"ae-title": "OLD", "host": "10.0.0.9"}, old.name))  # → delete
    actual.add(ActualObject("ae-title.HANDMADE", {"pipelines": []}, None))
    new = build_project(tmp_path / "p", tag="1.1")
    plan = plan_for(new, actual)
    plan.created_at = "2026-01-01T00:00:00+00:00"
    return plan


def golden(name: str, text: str, tmp_path) -> None:
    text = text.replace(str(tmp_path), "<tmp>")
    path = GOLDEN / name
    if os.environ.get("CLARACTL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_text_golden(tmp_path):
    golden("mixed.txt", render_text(mixed_plan(tmp_path), verbose=True).plain, tmp_path)


def test_markdown_golden(tmp_path):
    golden("mixed.md", render_markdown(mixed_plan(tmp_path)), tmp_path)


def test_text_no_changes(tmp_path):
    project = build_project(tmp_path)
    text = render_text(plan_for(project, converged(desired_state(project), project.name))).plain
    assert text.startswith("No changes.") and "Plan:" not in text


def test_markdown_is_truncated_with_a_note_past_the_limit(tmp_path):
    plan = mixed_plan(tmp_path)
    full = render_markdown(plan)
    cut = render_markdown(plan, limit=len(full) - 50)
    assert len(cut) <= len(full) - 50
    assert "output truncated" in cut and cut.rstrip().endswith("for the whole plan.")
    assert cut.count("```") == 2                                  # the code fence is still closed


def test_json_matches_schema_and_round_trips(tmp_path):
    plan = mixed_plan(tmp_path)
    data = json.loads(to_json(plan))
    jsonschema.validate(data, SCHEMA)
    assert data["summary"]["text"] == "Plan: 2 to add, 1 to change, 2 to destroy."
    back = plan_from_dict(data)
    assert plan_to_dict(back) == data
    diff = next(c for c in data["changes"] if c["address"] == "ae-title.ORGANSEG")["diffs"][0]
    assert diff == {"path": "priority", "action": "change", "sensitive": False, "before": "higher", "after": "normal"}


def test_schema_rejects_an_unknown_action(tmp_path):
    data = json.loads(to_json(mixed_plan(tmp_path)))
    data["changes"][0]["action"] = "recreate"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)
