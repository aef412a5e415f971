"""Shared output settings for every command: colour, verbosity, CI mode.

`console` and `err_console` are rich Consoles made on first use (PEP 562 `__getattr__`), so a
command that prints with `typer.echo` only (version, validate) does not load rich.
"""

from __future__ import annotations

import logging
import os
from typing import Any

verbosity = 0
_plain = False


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def configure(no_color: bool = False, verbose: int = 0) -> None:
    """Apply global flags: NO_COLOR / --no-color / CI give plain, uncoloured output."""
    global verbosity, _plain
    _plain = no_color or "NO_COLOR" in os.environ or is_ci()
    verbosity = verbose
    globals().pop("console", None)          # made again, with these settings, on next use
    globals().pop("err_console", None)
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def __getattr__(name: str) -> Any:
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    terminal = None if not _plain else False
    made = (Console(no_color=_plain, highlight=not _plain, force_terminal=terminal) if name == "console"
            else Console(stderr=True, no_color=_plain, highlight=False, force_terminal=terminal))
    globals()[name] = made
    return made
