"""claractl values ⇄ Clara messages: ids, timestamps, job states, priorities, metadata maps."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from claractl.platform.clara_api.protos import enum_value, message
from claractl.platform.operations.common import utc
from claractl.platform.operations.ids import clara_id
from claractl.platform.operations.metadata import as_strings

# Clara's Timestamp counts seconds since 0001-01-01T00:00:00Z (.NET ticks / 10^7).
YEAR_ONE_TO_UNIX = 62135596800
PRIORITY_TO_CLARA = {"lower": "JOB_PRIORITY_LOWER", "normal": "JOB_PRIORITY_NORMAL",
                     "higher": "JOB_PRIORITY_HIGHER", "immediate": "JOB_PRIORITY_IMMEDIATE"}


def ident(stored: str | None):
    return message("Identifier")(value=clara_id(stored) if stored else "")


def timestamp(dt: datetime | str | None):
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    if dt is None:
        return message("Timestamp")()
    return message("Timestamp")(value=int(utc(dt).timestamp()) + YEAR_ONE_TO_UNIX)


def from_timestamp(ts) -> datetime | None:
    if ts is None or not ts.value:
        return None
    return datetime.fromtimestamp(ts.value - YEAR_ONE_TO_UNIX, tz=timezone.utc)


def text_time(dt: datetime | None) -> str:
    """The old string fields (`timestamp_created` …): "YYYY-MM-DD HH:MM:SSZ"."""
    return utc(dt).strftime("%Y-%m-%d %H:%M:%SZ") if dt else ""


def job_state(state: str) -> int:
    return enum_value("JobState", f"JOB_STATE_{state}")


def job_status(status: str) -> int:
    return enum_value("JobStatus", f"JOB_STATUS_{status}")


def priority(name: str) -> int:
    return enum_value("JobPriority", PRIORITY_TO_CLARA.get(name, "JOB_PRIORITY_NORMAL"))


def priority_name(value: int) -> str:
    """A request's JobPriority; 0 (unset) is normal."""
    for name, clara in PRIORITY_TO_CLARA.items():
        if enum_value("JobPriority", clara) == value:
            return name
    return "normal"


def state_name(value: int) -> str | None:
    return {job_state(s): s for s in ("PENDING", "RUNNING", "STOPPED")}.get(value)


def status_name(value: int) -> str | None:
    names = ("HEALTHY", "FAULTED", "CANCELED", "EVICTED", "TERMINATED")
    return {job_status(s): s for s in names}.get(value)


def operator_status(op: dict[str, Any]) -> int:
    """Clara knows pending, running, completed and faulted operators; one that stopped any other
    way than HEALTHY (faulted, canceled, timed out) is FAULTED, its message says why."""
    if op["state"] == "PENDING":
        name = "PENDING"
    elif op["state"] == "RUNNING":
        name = "RUNNING"
    else:
        name = "COMPLETED" if op["status"] == "HEALTHY" else "FAULTED"
    return enum_value("JobOperatorStatus", f"JOB_OPERATOR_STATUS_{name}")


def metadata_map(target, values: dict[str, Any] | None) -> None:
    """Fill a protobuf map<string,string> field."""
    target.update(as_strings(values))
