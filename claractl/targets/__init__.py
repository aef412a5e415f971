"""Targets: where a project is applied. `get_target(project)` picks the one the project names.

Every target implements `claractl.targets.base.Target`; the workflow (plan, lock, verify,
execute) is shared and lives in `claractl.targets.base`.
"""

from __future__ import annotations

import importlib

from claractl.plan import PlanError
from claractl.project.model import Project
from claractl.targets.base import LockHeld, LockInfo, Target, execute, locked, make_plan, verify_plan

__all__ = ["LockHeld", "LockInfo", "Target", "execute", "get_target", "locked", "make_plan",
           "project_platform_client", "verify_plan"]

# target type → "module:Class"; imported lazily so the local target never loads the kubernetes client.
TARGETS = {
    "local": "claractl.targets.local:LocalTarget",
    "kubernetes": "claractl.targets.kubernetes:KubernetesTarget",
}


def project_platform_client(project: Project):
    """A PlatformClient for the platform the project's target runs: locally its state dir's
    platform, on Kubernetes the platform API through the API server's service proxy (with the
    kubeconfig's credentials and the project's or the generated API token)."""
    return get_target(project).client()


def get_target(project: Project) -> Target:
    kind = project.target.type
    spec = TARGETS.get(kind)
    if spec is None:
        raise PlanError(f"unknown target type {kind!r}; expected one of {', '.join(TARGETS)}")
    module_name, _, class_name = spec.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if cls is None:
        raise PlanError(f"the {kind} target is not available in this version of claractl")
    return cls(project)
