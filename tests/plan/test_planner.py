import copy

import pytest

from claractl.plan import ActualObject, ActualState, PlanError, StalePlanError, check_fresh, desired_state
from claractl.plan.model import CREATE, DELETE, NOOP, REPLACE, UPDATE
from tests.plan.conftest import build_project
from tests.plan.helpers import converged, plan_for


def actions(plan):
    return {c.address: c.action for c in plan.changes}


def test_empty_target_creates_everything_in_dependency_order(project):
    plan = plan_for(project, ActualState())
    assert [c.address for c in plan.changes] == [
        "service.dicom-adapter", "service.platform", "model.ct-organs", "pipeline.ct-organ-seg",
        "ae-title.ORGANSEG", "destination.pacs-main", "source.pacs-main",
    ]
    assert set(actions(plan).values()) == {CREATE}
    assert plan.summary.line() == "Plan: 7 to add, 0 to change, 0 to destroy."


def test_converged_target_has_no_changes(project):
    plan = plan_for(project, converged(desired_state(project), project.name))
    assert not plan.has_changes
    assert set(actions(plan).values()) == {NOOP}


def test_field_change_is_an_update_with_nested_path(tmp_path, project):
    actual = converged(desired_state(project), project.name)
    edited = build_project(tmp_path, tag="1.1")
    plan = plan_for(edited, actual)
    [change] = plan.pending
    assert change.action == UPDATE and change.address == "pipeline.ct-organ-seg"
    [d] = change.diffs
    assert (d.path, d.before, d.after) == ("definition.operators[name=seg].container.tag", "1.0", "1.1")


def test_drift_on_the_target_shows_as_update_back_to_the_file(project):
    actual = converged(desired_state(project), project.name)
    actual.objects["ae-title.ORGANSEG"].fields["timeout"] = 30.0
    [change] = plan_for(project, actual).pending
    assert change.address == "ae-title.ORGANSEG" and change.diffs[0].after == 5.0


def test_owned_object_missing_from_project_is_deleted_last(project):
    actual = converged(desired_state(project), project.name)
    actual.add(ActualObject("ae-title.OLD", {"pipelines": []}, project.name))
    actual.add(ActualObject("pipeline.old", {"definition": {}}, project.name))
    plan = plan_for(project, actual)
    assert [c.address for c in plan.pending] == ["ae-title.OLD", "pipeline.old"]
    assert {c.action for c in plan.pending} == {DELETE}


def test_objects_of_others_are_never_touched_and_listed_as_unmanaged(project):
    actual = converged(desired_state(project), project.name)
    actual.add(ActualObject("ae-title.HANDMADE", {"pipelines": []}, None))
    actual.add(ActualObject("source.other", {"host": "x"}, "other-project"))
    plan = plan_for(project, actual)
    assert not plan.has_changes
    assert plan.unmanaged == [{"address": "ae-title.HANDMADE", "owner": None},
                              {"address": "source.other", "owner": "other-project"}]
    destroy = plan_for(project, actual, destroy=True)
    assert "ae-title.HANDMADE" not in actions(destroy) and "source.other" not in actions(destroy)


def test_existing_object_owned_by_someone_else_is_a_conflict(project):
    actual = ActualState()
    actual.add(ActualObject("ae-title.ORGANSEG", {"pipelines": []}, None))
    with pytest.raises(PlanError, match=r"ae-title.ORGANSEG: already exists .*made by hand"):
        plan_for(project, actual)


def test_pipeline_name_spelling_change_is_a_replace_with_reason(project):
    actual = converged(desired_state(project), project.name)
    obj = actual.objects.pop("pipeline.ct-organ-seg")
    actual.add(ActualObject("pipeline.CT-Organ-Seg", obj.fields, project.name))
    [change] = plan_for(project, actual).pending
    assert change.action == REPLACE and "case-insensitively" in change.reason
    assert change.actual_name == "CT-Organ-Seg"


def test_destroy_deletes_owned_objects_in_reverse_order(project):
    plan = plan_for(project, converged(desired_state(project), project.name), destroy=True)
    kinds = [c.kind for c in plan.changes]
    assert kinds == ["ae-title", "destination", "source", "pipeline", "model", "service", "service"]
    assert plan.summary.line() == "Plan: 0 to add, 0 to change, 7 to destroy."


def test_protect_blocks_destroy_and_names_the_address(tmp_path):
    project = build_project(tmp_path, protect=True)
    actual = converged(desired_state(project), project.name)
    with pytest.raises(PlanError, match=r"model.ct-organs .*lifecycle.protect"):
        plan_for(project, actual, destroy=True)
    # … but a plan that does not delete it is fine, and excluding it makes the destroy possible.
    assert not plan_for(project, actual).has_changes
    plan = plan_for(project, actual, destroy=True, exclude=["model.ct-organs", "pipeline."])
    assert "model.ct-organs" not in actions(plan)


def test_only_and_exclude_narrow_with_a_warning(project):
    plan = plan_for(project, ActualState(), only=["pipeline", "model.ct-organs"])
    assert set(actions(plan)) == {"pipeline.ct-organ-seg", "model.ct-organs"}
    assert plan.warnings and "Left out" in plan.warnings[0]
    plan = plan_for(project, ActualState(), exclude=["service."])
    assert not any(a.startswith("service.") for a in actions(plan))
    with pytest.raises(PlanError, match="unknown kind"):
        plan_for(project, ActualState(), only=["pipline.x"])


def test_stale_plan_is_refused_naming_what_changed(project):
    actual = converged(desired_state(project), project.name)
    actual.objects["ae-title.ORGANSEG"].fields["priority"] = "higher"
    plan = plan_for(project, actual)
    check_fresh(plan, project.name, desired_state(project), actual)          # unchanged → fine
    later = copy.deepcopy(actual)
    later.objects["destination.pacs-main"].fields["port"] = 104
    later.add(ActualObject("source.new", {}, project.name))
    with pytest.raises(StalePlanError) as err:
        check_fresh(plan, project.name, desired_state(project), later)
    assert "destination.pacs-main changed" in str(err.value) and "source.new appeared" in str(err.value)


def test_a_plan_applied_twice_is_refused_the_second_time(project):
    actual = ActualState()
    desired = desired_state(project)
    plan = plan_for(project, actual)
    check_fresh(plan, project.name, desired, actual)
    after_apply = converged(desired, project.name)        # what the first apply left
    with pytest.raises(StalePlanError, match="appeared"):
        check_fresh(plan, project.name, desired, after_apply)


def test_project_edited_after_plan_is_refused(tmp_path, project):
    actual = converged(desired_state(project), project.name)
    plan = plan_for(build_project(tmp_path, tag="1.1"), actual)
    with pytest.raises(StalePlanError, match="pipeline.ct-organ-seg changed in the project"):
        check_fresh(plan, project.name, desired_state(build_project(tmp_path, tag="1.2")), actual)


def test_hand_made_objects_do_not_make_a_plan_stale(project):
    actual = converged(desired_state(project), project.name)
    plan = plan_for(project, actual)
    actual.add(ActualObject("ae-title.HANDMADE", {}, None))
    check_fresh(plan, project.name, desired_state(project), actual)


def test_model_content_change_is_an_update_and_backend_change_a_replace(tmp_path):
    project = build_project(tmp_path)
    actual = converged(desired_state(project), project.name)
    assert actual.objects["model.ct-organs"].fields["config"]["backend"] == "onnxruntime"
    (tmp_path / "models" / "ct-organs" / "1" / "model.onnx").write_bytes(b"retrained")
    [change] = plan_for(project, actual).pending
    assert change.action == UPDATE and [d.path for d in change.diffs] == ["digest"]
    cfg = tmp_path / "models" / "ct-organs" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace("onnxruntime", "tensorrt"))
    [change] = plan_for(project, actual).pending
    assert change.action == REPLACE and "backend" in change.reason
