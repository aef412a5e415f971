"""Socket tweaks shared by our SCP and SCU."""

from __future__ import annotations

import socket

from pynetdicom import evt


def _set_nodelay(event) -> None:
    # Without TCP_NODELAY small PDUs (C-STORE-RSP, last fragments) wait for delayed ACKs (~40 ms).
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


NODELAY_HANDLER = (evt.EVT_CONN_OPEN, _set_nodelay)
