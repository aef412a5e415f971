"""Associations in the audit trail: each accepted or rejected one is an event in the store
(claractl.platform.audit) and a line in `<state-dir>/logs/dicom-audit.log`, a file a hospital can
archive."""

from __future__ import annotations

import logging
from pathlib import Path

from claractl.platform.audit import trail
from claractl.platform.store.models import AuditOutcome

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


def association(store, accepted: bool, peer: str, calling: str, called: str, reason: str = "",
                tls: str | None = None) -> None:
    """Both records of one association decision."""
    line("ACCEPT" if accepted else "REJECT", peer, calling, called, reason, tls)
    detail = {"reason": reason} if reason else {}
    if tls is not None:
        detail["tls"] = tls or "no client certificate"
    trail.emit(store, "association", "accepted" if accepted else "rejected",
               outcome=AuditOutcome.SUCCESS if accepted else AuditOutcome.MINOR_FAILURE,
               actor=calling, source=peer, target=called, detail=detail)


def line(action: str, peer: str, calling: str, called: str, reason: str = "", tls: str | None = None) -> None:
    """`tls`: None for a plain association, else the client certificate's subject ("" for none)."""
    text = f"{action} peer={peer} calling_ae={calling!r} called_ae={called!r}"
    if tls is not None:
        text += f" tls={tls or 'no client certificate'!r}"
    if reason:
        text += f" reason={reason!r}"
    audit_log.info(text)
