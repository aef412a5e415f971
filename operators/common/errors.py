"""One error type for every operator failure the user can act on, and a runner that turns it
into a one-line message on stderr and a non-zero exit code (never a traceback)."""

from __future__ import annotations

import logging
import sys
from typing import Callable


class OperatorError(Exception):
    """A failure with a message meant for the user (names the file, peer or argument)."""


def run(name: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # it logs every copied module at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return main(argv)
    except OperatorError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
