"""Errors of the plan engine; each message is meant to be printed as-is to the user."""

from __future__ import annotations


class PlanError(Exception):
    """The plan cannot be made or applied (conflict, protect, bad selector, unreadable plan file)."""


class StalePlanError(PlanError):
    """The target (or the project) changed since the saved plan was made."""


class LockError(PlanError):
    """Another apply holds the lock."""


class TargetError(PlanError):
    """The target could not be read or changed (unreachable, API error, health wait failed)."""
