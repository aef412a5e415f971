"""Host names and addresses in a project: what a socket will accept, checked without resolving.

A host is an IPv4 or IPv6 address, or a DNS name (RFC 1123: dot-separated labels of 1-63 letters,
digits and hyphens, not starting or ending with a hyphen; 253 characters at most; underscores are
accepted too, as DNS and resolvers accept them and hospital networks use them). Names are not
looked up: whether one resolves depends on where the platform runs, not on the file.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")


def host_problem(host: str) -> str | None:
    """Why `host` is not a host name or address, or None."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if text != host or ":" in text:                       # IPv6, bare or in brackets
        try:
            ipaddress.IPv6Address(text)
            return None
        except ValueError:
            return f"'{host}' is not a valid IPv6 address"
    if _DOTTED_NUMBERS.match(text):
        try:
            ipaddress.IPv4Address(text)
            return None
        except ValueError:
            return f"'{host}' is not a valid IPv4 address"
    name = text[:-1] if text.endswith(".") else text       # a trailing dot: fully qualified
    if not name or len(name) > 253:
        return f"'{host}' is not a host name (1-253 characters)"
    if not all(_LABEL.match(label) for label in name.split(".")):
        return (f"'{host}' is not a host name or IP address: each dot-separated part is 1-63 letters, "
                "digits, '-' or '_', with no '-' at either end")
    return None


def endpoint_problem(text: str) -> str | None:
    """Why `text` is not HOST[:PORT] or http(s)://HOST[:PORT][/PATH] (IPv6 in brackets), or None."""
    parsed = urlsplit(text if "://" in text else f"http://{text}")
    if parsed.scheme not in ("http", "https"):
        return f"'{text}': expected HOST:PORT or an http:// or https:// URL"
    try:
        port = parsed.port
    except ValueError:
        return f"'{text}': the port must be a number 1-65535"
    if port == 0:
        return f"'{text}': the port must be a number 1-65535"
    if not parsed.hostname:
        return f"'{text}' names no host"
    return host_problem(f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname)
