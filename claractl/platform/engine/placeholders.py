"""`${{ name }}` placeholders in a PDL definition, resolved when a job starts.

The rules live in the project loader (`claractl.project.resolve_placeholders`) so that
validation at plan time and resolution at run time agree: values from the job's start
variables, defaults from `parameters`, an unknown name is an error.
"""

from __future__ import annotations

from typing import Any

from claractl.project import PlaceholderError, resolve_placeholders

__all__ = ["PlaceholderError", "resolve"]


def resolve(definition: dict[str, Any], variables: dict[str, Any] | None) -> dict[str, Any]:
    return resolve_placeholders(definition, variables or {})
