"""Shared output settings for every command: colour, verbosity, CI mode."""

from __future__ import annotations

import logging
import os

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
verbosity = 0


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def configure(no_color: bool = False, verbose: int = 0) -> None:
    """Apply global flags: NO_COLOR / --no-color / CI give plain, uncoloured output."""
    global console, err_console, verbosity
    plain = no_color or "NO_COLOR" in os.environ or is_ci()
    console = Console(no_color=plain, highlight=not plain, force_terminal=None if not plain else False)
    err_console = Console(stderr=True, no_color=plain, highlight=False, force_terminal=None if not plain else False)
    verbosity = verbose
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
