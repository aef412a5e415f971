"""The `claractl dicom send` hang: pynetdicom's reactor took the C-STORE response (see
claractl.platform.dicom.scu.hand_back_responses). Here the race is forced to happen every time:
the reactor thread is made to wait for the next response while its "paused" flag is stale."""

from __future__ import annotations

import threading

from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from claractl.platform.dicom.scu import Peer, associate
from tests.dicom.conftest import CALLED_AE


def force_reactor_to_take_next_response(assoc) -> threading.Event:
    """From now on, the first time pynetdicom's reactor looks for a message it claims to be
    paused (the stale flag of the race) and waits for the next one: it queues for the response
    before the caller does, so it gets it. Returns an event set once it took one."""
    caller = threading.current_thread()
    real_get_msg = assoc.dimse.get_msg
    took = threading.Event()

    def get_msg(block: bool = False):
        if threading.current_thread() is caller or took.is_set():
            return real_get_msg(block)
        assoc._is_paused = True
        try:
            item = assoc.dimse.msg_queue.get(timeout=10)
        except Exception:
            return None, None
        took.set()
        assoc._is_paused = False
        return item

    assoc.dimse.get_msg = get_msg
    return took


def test_a_response_taken_by_the_reactor_still_reaches_send_c_store(adapter, ct5):
    ae = AE(ae_title="CLARATEST")
    ae.dimse_timeout = 5
    ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
    attempt = associate(ae, Peer(CALLED_AE, "127.0.0.1", adapter.port))
    assert attempt.established, attempt.failure
    assoc = attempt.assoc
    try:
        assert assoc.send_c_store(ct5[0]).Status == 0x0000
        took = force_reactor_to_take_next_response(assoc)
        rsp = assoc.send_c_store(ct5[1])
        assert took.is_set()                         # the race happened …
        assert rsp and rsp.Status == 0x0000          # … and the response still arrived
        assert assoc.send_c_store(ct5[2]).Status == 0x0000
    finally:
        assoc.release()
    assert adapter.status()["instances_received"] == 3
