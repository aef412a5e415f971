"""A plan is a value: computed once, rendered, saved, and applied exactly (Terraform's model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from claractl.plan.diff import FieldDiff

FORMAT_VERSION = "1.1"          # 1.1: changes carry clara_id

CREATE, UPDATE, REPLACE, DELETE, NOOP = "create", "update", "replace", "delete", "no-op"
ACTIONS = (CREATE, UPDATE, REPLACE, DELETE, NOOP)


@dataclass
class Change:
    address: str
    action: str
    before: dict[str, Any] | None          # actual fields (None when absent)
    after: dict[str, Any] | None           # desired fields (None when deleting)
    diffs: list[FieldDiff] = field(default_factory=list)
    reason: str | None = None              # why a replace (or why an update, e.g. drift)
    actual_name: str | None = None         # the target's spelling when it differs (replace)
    # Order within the address kind's rank: a target's own change groups (Kubernetes: RBAC, config
    # and storage, then Services, then workloads). Lower runs first; deletes walk them in reverse.
    group: int = 0
    clara_id: str | None = None            # the existing object's id in Clara's API (pipelines, models)

    @property
    def kind(self) -> str:
        return self.address.partition(".")[0]

    @property
    def name(self) -> str:
        return self.address.partition(".")[2]


@dataclass
class Summary:
    add: int = 0
    change: int = 0
    destroy: int = 0

    @classmethod
    def of(cls, changes: list[Change]) -> "Summary":
        s = cls()
        for c in changes:
            if c.action == CREATE:
                s.add += 1
            elif c.action == UPDATE:
                s.change += 1
            elif c.action == DELETE:
                s.destroy += 1
            elif c.action == REPLACE:        # Terraform counts a replace as one add and one destroy
                s.add += 1
                s.destroy += 1
        return s

    def line(self) -> str:
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."


@dataclass
class Plan:
    project: str
    target: str                              # target type: local | kubernetes
    scope: str                               # lock scope, "<project>/<target>"
    changes: list[Change]                    # every managed address, no-ops included, in apply order
    state_hashes: dict[str, str]             # address → digest of the actual object it was computed from
    fingerprint: str                         # sha256 over state_hashes
    destroy: bool = False
    only: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unmanaged: list[dict[str, Any]] = field(default_factory=list)   # [{address, owner}]
    created_at: str = ""
    project_file: str = ""

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != NOOP]

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    @property
    def summary(self) -> Summary:
        return Summary.of(self.changes)
