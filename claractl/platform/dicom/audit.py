"""The audit trail: one line per association accepted or rejected, kept in a file a hospital can archive."""

from __future__ import annotations

import logging
from pathlib import Path

audit_log = logging.getLogger("claractl.dicom.audit")


def attach_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
    return handler


def detach(handler: logging.Handler) -> None:
    audit_log.removeHandler(handler)
    handler.close()


def line(action: str, peer: str, calling: str, called: str, reason: str = "", tls: str | None = None) -> None:
    """`tls`: None for a plain association, else the client certificate's subject ("" for none)."""
    text = f"{action} peer={peer} calling_ae={calling!r} called_ae={called!r}"
    if tls is not None:
        text += f" tls={tls or 'no client certificate'!r}"
    if reason:
        text += f" reason={reason!r}"
    audit_log.info(text)
