"""Addresses: the names of managed things (`pipeline.ct-organ-seg`, `ae-title.ORGANSEG`, …).

An address is `<kind>.<name>`; a target may add sub-objects after a slash
(`service.triton/Deployment/clara-triton`). The kind decides where a change runs in the
ordering graph (`RANK`): services first, deletes last and in reverse.
"""

from __future__ import annotations

KINDS = ("service", "model", "pipeline", "ae-title", "source", "destination")

# Lower runs first for creates/updates; deletes walk the ranks in reverse.
RANK = {"service": 0, "model": 1, "pipeline": 2, "ae-title": 3, "source": 3, "destination": 3}


def make(kind: str, name: str) -> str:
    if kind not in RANK:
        raise ValueError(f"unknown address kind {kind!r}; expected one of {', '.join(KINDS)}")
    return f"{kind}.{name}"


def split(address: str) -> tuple[str, str]:
    """`pipeline.ct-seg` → ("pipeline", "ct-seg"); the name keeps any `/sub/object` suffix."""
    kind, _, name = address.partition(".")
    if kind not in RANK or not name:
        raise ValueError(f"not an address: {address!r} (expected <kind>.<name>, kind one of {', '.join(KINDS)})")
    return kind, name


def kind_of(address: str) -> str:
    return split(address)[0]


def rank(address: str) -> int:
    return RANK[kind_of(address)]


def matches(address: str, selector: str) -> bool:
    """Selector match for --only/--exclude: exact, a kind (`pipeline` / `pipeline.`), or a parent
    address (`service.triton` also selects `service.triton/Deployment/clara-triton`)."""
    selector = selector.strip()
    if not selector:
        return False
    if address == selector:
        return True
    if selector in RANK:
        selector += "."
    if selector.endswith((".", "/")):
        return address.startswith(selector)
    return address.startswith(selector + "/")


def validate_selector(selector: str) -> str | None:
    """An error message for a selector that can never match, else None."""
    kind = selector.rstrip(".").partition(".")[0]
    if kind not in RANK:
        return f"--only/--exclude {selector!r}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
    return None
