"""Wake pynetdicom's reactor threads when there is work instead of letting them poll blindly.

pynetdicom 3 runs two polling loops per association: the DUL thread sleeps `_run_loop_delay`
(1 ms) whenever it found nothing to do, and the association thread sleeps 1 ms before every
look at the DIMSE message queue. Per C-STORE that is two blind sleeps on the critical path
(message complete → handler; response queued → sent), 2–3 ms per instance on a loaded
machine, more than the fsync. `install()` keeps both loops and their timeouts exactly as they
are but turns those two sleeps into waits that end early:

- DUL thread: `select()` on its socket (incoming PDU) and an eventfd that is signalled when a
  primitive is queued for sending (`to_provider_queue.put`);
- association thread: a `threading.Event` set when a DIMSE message is complete
  (`dimse.msg_queue.put`) or an A-RELEASE/A-ABORT arrives (`dul.to_user_queue.put`).

A wait never lasts longer than the sleep it replaces, so periodic checks (ARTIM, idle timeout,
kill flags) run at least as often as before. Only sleeps of exactly those durations in those
threads are affected; with any other pynetdicom major version `install()` does nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
import time
import weakref

import pynetdicom
import pynetdicom.association as _association
import pynetdicom.dul as _dul

log = logging.getLogger("claractl.dicom")

_ASSOC_REACTOR_SLEEP = 0.001    # the hard-coded sleep in Association._run_reactor
_installed = False
_install_lock = threading.Lock()


class _WakingQueue(queue.Queue):
    """A Queue whose put() also calls `wake()` (after the item is visible to get())."""

    def __init__(self, wake) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item, block=True, timeout=None) -> None:
        super().put(item, block, timeout)
        self._wake()


def _signal_fd(fd: int) -> None:
    try:
        os.eventfd_write(fd, 1)
    except OSError:      # closed (association gone) or counter full: nothing to wake
        pass


class _ReactorTime:
    """Stands in for the `time` module inside pynetdicom.dul / pynetdicom.association."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        wait = getattr(thread, "_claractl_wait", None)
        if wait is None or seconds != getattr(thread, "_claractl_wait_for", None):
            time.sleep(seconds)
            return
        wait(seconds)


def _dul_wait(dul, fd: int):
    def wait(seconds: float) -> None:
        sock = getattr(dul.socket, "socket", None)
        fds = [fd] if sock is None else [fd, sock]
        try:
            ready, _, _ = select.select(fds, [], [], seconds)
        except (OSError, ValueError):     # socket closed under us: behave like the plain sleep
            time.sleep(seconds)
            return
        if fd in ready:
            try:
                os.eventfd_read(fd)
            except OSError:
                pass
    return wait


def _assoc_wait(event: threading.Event):
    def wait(seconds: float) -> None:
        event.wait(seconds)
        event.clear()
    return wait


def _wire(assoc) -> None:
    """Give one new Association (and its DUL) the wake-up plumbing."""
    dul, dimse = assoc.dul, assoc.dimse
    fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    weakref.finalize(dul, os.close, fd)
    dul.to_provider_queue = _WakingQueue(lambda: _signal_fd(fd))
    dul._claractl_wait = _dul_wait(dul, fd)
    dul._claractl_wait_for = dul._run_loop_delay
    ready = threading.Event()
    dimse.msg_queue = _WakingQueue(ready.set)
    dul.to_user_queue = _WakingQueue(ready.set)
    assoc._claractl_wait = _assoc_wait(ready)
    assoc._claractl_wait_for = _ASSOC_REACTOR_SLEEP


def install() -> bool:
    """Patch pynetdicom once per process; True when active."""
    global _installed
    with _install_lock:
        if _installed:
            return True
        if not pynetdicom.__version__.startswith("3.") or not hasattr(os, "eventfd"):
            log.info("pynetdicom %s: reactor wake-ups not installed (made for 3.x on Linux)",
                     pynetdicom.__version__)
            return False
        original_init = _association.Association.__init__

        def __init__(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            _wire(self)

        _association.Association.__init__ = __init__
        _association.time = _ReactorTime()
        _dul.time = _ReactorTime()
        _installed = True
        return True
