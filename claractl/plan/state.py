"""Desired and actual state, as plain values keyed by address.

`fields` are the settings claractl manages for that object, with the project file's key names
(kebab-case). Desired values may hold `Secret`s; actual values come live from a target.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from claractl.plan.secrets import redact
from claractl.project.model import Location


@dataclass
class Resource:
    """One desired object, from the project."""

    address: str
    fields: dict[str, Any]
    protect: bool = False
    where: Location | None = None
    informational: tuple[str, ...] = ()   # field names shown but never compared


@dataclass
class ActualObject:
    """One object as the target reports it now; `owner` is the project that applied it (None = by hand)."""

    address: str
    fields: dict[str, Any]
    owner: str | None = None
    # Set when the object matches its fields but is not done yet (e.g. "not ready: 0/1 available …"):
    # the plan then keeps it as an update, and applying it waits again. Not part of the state hash.
    unready: str | None = None
    # The id Clara's API knows the object by (pipelines, models): shown, never compared or hashed.
    clara_id: str | None = None


@dataclass
class ActualState:
    objects: dict[str, ActualObject] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   # e.g. "platform started with its last settings"

    def add(self, obj: ActualObject) -> None:
        self.objects[obj.address] = obj

    def hashes(self, addresses: set[str]) -> dict[str, str]:
        """Per-address digest of what the target holds now (absent addresses are left out).

        Computed over redacted values: a plan file must not carry anything derived from a secret."""
        out = {}
        for address in sorted(addresses):
            obj = self.objects.get(address)
            if obj is not None:
                out[address] = object_hash(obj)
        return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def object_hash(obj: ActualObject) -> str:
    body = canonical({"fields": redact(obj.fields), "owner": obj.owner})
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def fingerprint(hashes: dict[str, str]) -> str:
    return "sha256:" + hashlib.sha256(canonical(hashes).encode()).hexdigest()
