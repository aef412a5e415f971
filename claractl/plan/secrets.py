"""Keep secret values out of every output: text, JSON, markdown, plan files and logs.

A value is sensitive when it came from `${env:…}` (a `Secret`), when its key is named like a
password/token/secret, or when it is a URL carrying a password (`postgresql://u:pw@host/db`).
"""

from __future__ import annotations

import re
from typing import Any

from claractl.project.model import Secret

SENSITIVE = "(sensitive)"

_SENSITIVE_KEY = re.compile(r"(passw(or)?d|token|secret|credential|api[-_]?key|private[-_]?key)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<tail>@.*)$")


def is_sensitive_key(key: str) -> bool:
    return bool(_SENSITIVE_KEY.search(key))


def plain(value: Any) -> Any:
    """The real value, for comparing and applying (Secret → its value), recursively."""
    if isinstance(value, Secret):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def redact(value: Any, key: str = "") -> Any:
    """A copy safe to print or store: every sensitive value replaced by "(sensitive)"."""
    if isinstance(value, Secret):
        return SENSITIVE
    if key and is_sensitive_key(key) and value not in (None, "", [], {}):
        return SENSITIVE
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: m["head"] + SENSITIVE + m["tail"], value)
    return value


def is_sensitive_value(value: Any, key: str = "") -> bool:
    """True when `redact` would hide (part of) this scalar."""
    if isinstance(value, Secret):
        return True
    if key and is_sensitive_key(key) and value not in (None, "", [], {}):
        return True
    return isinstance(value, str) and bool(_URL_PASSWORD.match(value))
