"""Who may see the dashboard and the images.

On loopback (the API bound to 127.0.0.1 / ::1 / localhost) the machine's users are trusted, as
for the rest of the local platform. Otherwise every UI page and every render data route needs
the API token (`api.token` / CLARA_API_TOKEN, else `<state-dir>/api-token`): as `Authorization: Bearer …`, or once as
`?token=…` on a page, which sets an HttpOnly cookie and redirects to the same page without the
token (so it does not stay in the address bar or browser history). Images are patient data:
with a non-loopback bind and no token configured, nobody is let in.
"""

from __future__ import annotations

import hmac
from enum import Enum

from fastapi import Request

from claractl.platform.api.auth import is_loopback, read_token
from claractl.platform.config import PlatformConfig

COOKIE = "clara_token"


class Access(Enum):
    OPEN = "open"                 # loopback: no token needed
    GRANTED = "granted"
    MISSING = "missing"           # no (or a wrong) token presented
    UNCONFIGURED = "unconfigured"  # exposed on the network, no token set on the platform


def expected_token(config: PlatformConfig) -> str | None:
    """The API's token: CLARA_API_TOKEN / api.token, else the one the API server generated."""
    return read_token(config) or None


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def check(config: PlatformConfig, request: Request, token: str | None = None) -> Access:
    if is_loopback(config.api.host):
        return Access.OPEN
    expected = expected_token(config)
    if not expected:
        return Access.UNCONFIGURED
    given = token if token is not None else presented_token(request)
    if given and hmac.compare_digest(given.encode(), expected.encode()):
        return Access.GRANTED
    return Access.MISSING


def denial_message(access: Access) -> str:
    if access is Access.UNCONFIGURED:
        return (
            "the platform API listens on a network address but no API token is set "
            "(api.token or CLARA_API_TOKEN); the dashboard stays closed until one is"
        )
    return "this dashboard needs the platform API token: open it once with ?token=<token>"
