"""Helpers for unit tests: an actual state that equals (or differs from) a desired one."""

from __future__ import annotations

import copy

from claractl.plan import ActualObject, ActualState, compute_plan, desired_state
from claractl.plan.secrets import plain


def converged(desired, owner: str) -> ActualState:
    """The state a correct apply of `desired` leaves behind."""
    state = ActualState()
    for a, res in desired.items():
        state.add(ActualObject(a, copy.deepcopy(plain(res.fields)), owner))
    return state


def plan_for(project, actual: ActualState, **kw):
    return compute_plan(project_name=project.name, target_type="local", scope=f"{project.name}/local",
                        desired=desired_state(project), actual=actual, **kw)
