"""The plan engine, shared by every target: addresses, desired state, diff, ordering, plan files
and renderers. It knows no target and prints nothing: a plan is a value (Terraform's model)."""

from claractl.plan.desired import desired_state
from claractl.plan.errors import LockError, PlanError, StalePlanError, TargetError
from claractl.plan.graph import ApplyResult, order, walk, waves
from claractl.plan.model import ACTIONS, CREATE, DELETE, FORMAT_VERSION, NOOP, REPLACE, UPDATE, Change, Plan, Summary
from claractl.plan.planner import check_fresh, compute_plan
from claractl.plan.serialize import plan_from_dict, plan_to_dict, read_plan, to_json, write_plan
from claractl.plan.state import ActualObject, ActualState, Resource

__all__ = [
    "ACTIONS", "CREATE", "UPDATE", "REPLACE", "DELETE", "NOOP", "FORMAT_VERSION",
    "ActualObject", "ActualState", "ApplyResult", "Change", "LockError", "Plan", "PlanError",
    "Resource", "StalePlanError", "Summary", "TargetError", "check_fresh", "compute_plan",
    "desired_state", "order", "plan_from_dict", "plan_to_dict", "read_plan", "to_json", "walk",
    "waves", "write_plan",
]
