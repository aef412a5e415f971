"""`plan` shows the Clara id of the pipelines and models that exist on the target (what a Clara
API script knows them by): in the header of each change in the text, as `clara_id` in the JSON
(null for objects not created yet and for kinds the Clara API does not know)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.plan.integration import make_env

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "plan-output.schema.json").read_text())


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.stop()


def test_plan_names_existing_pipelines_and_models_by_their_clara_ids(env):
    env.write()
    r = env.cli("apply", "--auto-approve")
    assert r.exit_code == 0, r.output
    pipeline_id, model_id = env.get("/pipelines/hello")["clara_id"], env.get("/models/tiny")["clara_id"]

    # hello changes, a second pipeline is new.
    env.write(tag="0.2.0", pipelines=("hello", "second"))
    r = env.cli("plan", "-o", "json")
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    jsonschema.validate(plan, SCHEMA)
    assert plan["format_version"] == "1.1"
    ids = {c["address"]: (c["action"], c["clara_id"]) for c in plan["changes"]}
    assert ids["pipeline.hello"] == ("update", pipeline_id)
    assert ids["pipeline.second"] == ("create", None)
    assert ids["model.tiny"] == ("no-op", model_id)
    assert {v[1] for a, v in ids.items() if not a.startswith(("pipeline.", "model."))} == {None}

    r = env.cli("plan")
    assert r.exit_code == 0, r.output
    assert f"~ pipeline.hello (Clara id {pipeline_id})" in r.output
    assert "+ pipeline.second\n" in r.output

    # A saved plan keeps them; a pipeline the project drops is deleted under its Clara id.
    env.write(pipelines=("second",))
    saved = env.root / "drop.plan"
    r = env.cli("plan", "--out", str(saved))
    assert r.exit_code == 0, r.output
    assert f"- pipeline.hello (Clara id {pipeline_id})" in r.output
    r = env.cli("show", str(saved))
    assert f"- pipeline.hello (Clara id {pipeline_id})" in r.output, r.output
