"""desired − actual → a Plan. Pure: no I/O, no target; the caller reads the state."""

from __future__ import annotations

from datetime import datetime, timezone

from claractl.plan import address as addr
from claractl.plan.diff import field_diffs
from claractl.plan.errors import PlanError, StalePlanError
from claractl.plan.graph import order
from claractl.plan.model import CREATE, DELETE, NOOP, REPLACE, UPDATE, Change, Plan
from claractl.plan.secrets import redact
from claractl.plan.state import ActualObject, ActualState, Resource, fingerprint

# Kinds whose names the platform treats case-insensitively (Clara: pipeline names).
CASE_INSENSITIVE = {"pipeline"}


def _key(address: str) -> str:
    kind, name = address.partition(".")[::2]
    return f"{kind}.{name.lower()}" if kind in CASE_INSENSITIVE else address


def _compare(desired: Resource, actual: ActualObject | None) -> Change:
    compared = {k: v for k, v in desired.fields.items() if k not in desired.informational}
    if actual is None:
        return Change(desired.address, CREATE, None, desired.fields)
    before = {k: actual.fields.get(k) for k in compared} if compared else {}
    # Compare only the fields this project manages; extra fields on the target are not ours.
    diffs = field_diffs({k: actual.fields[k] for k in compared if k in actual.fields}, compared)
    if actual.address != desired.address:
        return Change(desired.address, REPLACE, dict(actual.fields), desired.fields, diffs,
                      reason=f"name spelling changes from {actual.address.partition('.')[2]!r}; "
                             "the platform keys it case-insensitively, so it is deleted and re-created",
                      actual_name=actual.address.partition(".")[2])
    if not diffs:
        if actual.unready:
            return Change(desired.address, UPDATE, before, desired.fields, reason=actual.unready)
        return Change(desired.address, NOOP, before, desired.fields)
    reason = _replace_reason(desired.address, diffs)
    if reason:
        return Change(desired.address, REPLACE, dict(actual.fields), desired.fields, diffs, reason=reason,
                      actual_name=actual.address.partition(".")[2])
    return Change(desired.address, UPDATE, dict(actual.fields), desired.fields, diffs)


# Fields whose change cannot be applied in place: (kind, path) → reason.
REPLACE_ON = {
    ("model", "config.backend"): "the backend changes: the old model is unloaded and removed before the new one loads",
}


def _replace_reason(address: str, diffs) -> str | None:
    kind = address.partition(".")[0]
    for d in diffs:
        reason = REPLACE_ON.get((kind, d.path))
        if reason:
            return reason
    return None


def _selected(address: str, only: list[str], exclude: list[str]) -> bool:
    if only and not any(addr.matches(address, s) for s in only):
        return False
    return not any(addr.matches(address, s) for s in exclude)


def relevant_addresses(project_name: str, desired: dict[str, Resource], actual: ActualState) -> set[str]:
    """What a plan depends on: everything the project declares or owns (not other people's objects)."""
    wanted = {_key(a) for a in desired}
    return {a for a, o in actual.objects.items() if o.owner == project_name or _key(a) in wanted}


def compute_plan(*, project_name: str, target_type: str, scope: str, desired: dict[str, Resource],
                 actual: ActualState, destroy: bool = False, only: list[str] | None = None,
                 exclude: list[str] | None = None, project_file: str = "") -> Plan:
    only, exclude = list(only or []), list(exclude or [])
    for sel in only + exclude:
        problem = addr.validate_selector(sel)
        if problem:
            raise PlanError(problem)

    by_key = {_key(a): o for a, o in actual.objects.items()}
    wanted = {} if destroy else desired
    changes: list[Change] = []
    conflicts: list[str] = []
    matched: set[str] = set()
    for address, res in wanted.items():
        obj = by_key.get(_key(address))
        if obj is not None:
            matched.add(obj.address)
            if obj.owner != project_name:
                owner = f"project {obj.owner!r}" if obj.owner else "nobody (made by hand)"
                conflicts.append(f"{address}: already exists on the target and is owned by {owner}; "
                                 "claractl never changes objects it does not manage — delete or rename it first")
                continue
        change = _compare(res, obj)
        change.clara_id = obj.clara_id if obj is not None else None
        changes.append(change)
    for a, obj in actual.objects.items():
        if obj.owner == project_name and a not in matched:
            changes.append(Change(a, DELETE, dict(obj.fields), None,
                                  field_diffs(obj.fields, {}), clara_id=obj.clara_id))
    unmanaged = [{"address": a, "owner": o.owner} for a, o in sorted(actual.objects.items())
                 if o.owner != project_name and a not in matched]

    warnings: list[str] = []
    if only or exclude:
        kept = [c for c in changes if _selected(c.address, only, exclude)]
        skipped = [c.address for c in changes if c.action != NOOP and c not in kept]
        warnings.append("This plan is narrowed with --only/--exclude: it may be incomplete, and objects "
                        "that depend on each other can be left inconsistent. Use it for exceptional "
                        "situations, then run a full plan." +
                        (f" Left out: {', '.join(skipped)}." if skipped else ""))
        changes = kept
    conflicts = [c for c in conflicts if _selected(c.partition(":")[0], only, exclude)]
    if conflicts:
        raise PlanError("cannot plan:\n  " + "\n  ".join(conflicts))

    protected = []
    for c in changes:
        res = desired.get(c.address) or next((r for r in desired.values() if _key(r.address) == _key(c.address)), None)
        if c.action in (DELETE, REPLACE) and res is not None and res.protect:
            where = f" ({res.where})" if res.where else ""
            protected.append(f"{c.address}{where} has lifecycle.protect: true and this plan would "
                             f"{'delete' if c.action == DELETE else 'replace'} it")
    if protected:
        raise PlanError("\n".join(protected) + "\nRemove `lifecycle: {protect: true}` from the project first "
                        "if you really mean to delete it.")

    hashes = actual.hashes(relevant_addresses(project_name, desired, actual))
    return Plan(
        project=project_name, target=target_type, scope=scope, changes=order(changes),
        state_hashes=hashes, fingerprint=fingerprint(hashes), destroy=destroy, only=only,
        exclude=exclude, warnings=warnings, notes=list(actual.notes), unmanaged=unmanaged,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), project_file=project_file,
    )


def check_fresh(plan: Plan, project_name: str, desired: dict[str, Resource], actual: ActualState) -> None:
    """Refuse a saved plan whose target or project changed since it was made (stale plan)."""
    if plan.project != project_name:
        raise StalePlanError(f"this plan is for project {plan.project!r}, not {project_name!r}")
    addresses = set(plan.state_hashes) | relevant_addresses(project_name, desired, actual) \
        | {c.address for c in plan.changes}
    now = actual.hashes(addresses)
    problems = []
    for a in sorted(set(now) | set(plan.state_hashes)):
        was, is_ = plan.state_hashes.get(a), now.get(a)
        if was == is_:
            continue
        if was is None:
            problems.append(f"{a} appeared")
        elif is_ is None:
            problems.append(f"{a} was deleted")
        else:
            problems.append(f"{a} changed")
    if problems:
        raise StalePlanError(
            "the saved plan is stale: the target changed since it was made (" + "; ".join(problems) +
            "). A plan can be applied only once, against the state it was computed from. "
            "Run `claractl plan` again.")
    drift = []
    for c in plan.pending:
        if c.action == DELETE:
            if not plan.destroy and c.address in desired:
                drift.append(f"{c.address} is back in the project")
            continue
        res = desired.get(c.address)
        if res is None:
            drift.append(f"{c.address} is no longer in the project")
        elif redact(res.fields) != c.after:
            drift.append(f"{c.address} changed in the project")
    if drift:
        raise StalePlanError("the saved plan is stale: the project changed since it was made (" +
                             "; ".join(drift) + "). Run `claractl plan` again.")
