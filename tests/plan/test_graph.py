import threading
import time

import pytest

from claractl.plan import Change, walk, waves
from claractl.plan.model import CREATE, DELETE, NOOP, UPDATE


def ch(address, action=CREATE):
    return Change(address, action, None, {})


def test_waves_follow_ranks_and_deletes_come_last_in_reverse():
    changes = [ch("ae-title.A"), ch("pipeline.p"), ch("service.platform", UPDATE), ch("model.m"),
               ch("source.s"), ch("model.old", DELETE), ch("ae-title.OLD", DELETE), ch("pipeline.same", NOOP)]
    assert [[c.address for c in w] for w in waves(changes)] == [
        ["service.platform"], ["model.m"], ["pipeline.p"], ["ae-title.A", "source.s"],
        ["ae-title.OLD"], ["model.old"],
    ]


def test_walk_runs_dependencies_first_and_never_exceeds_parallelism():
    changes = [ch(f"model.m{i}") for i in range(8)] + [ch(f"pipeline.p{i}") for i in range(8)]
    running = 0
    peak = 0
    lock = threading.Lock()
    finished_models = []
    order_ok = []

    def run(change):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if change.kind == "pipeline":
                order_ok.append(len(finished_models) == 8)
        time.sleep(0.01)
        with lock:
            running -= 1
            if change.kind == "model":
                finished_models.append(change.address)

    result = walk(changes, run, parallelism=3)
    assert result.ok and len(result.done) == 16
    assert 1 < peak <= 3
    assert all(order_ok)


def test_first_failure_stops_the_walk_and_reports_done_and_not_done():
    changes = [ch("service.platform"), ch("model.bad"), ch("model.good"), ch("pipeline.p"), ch("ae-title.A")]
    events = []

    def run(change):
        if change.address == "model.bad":
            raise RuntimeError("upload refused: HTTP 413")

    result = walk(changes, run, parallelism=1, on_event=lambda phase, c, msg: events.append((phase, c.address)))
    assert not result.ok
    assert result.failed == [("model.bad", "upload refused: HTTP 413")]
    assert result.done == ["service.platform"]
    assert result.not_done == ["model.good", "pipeline.p", "ae-title.A"]
    assert ("failed", "model.bad") in events


def test_parallelism_must_be_positive():
    with pytest.raises(ValueError):
        walk([ch("model.m")], lambda c: None, parallelism=0)


def test_keyboard_interrupt_stops_the_walk_and_reports():
    changes = [ch("model.a"), ch("pipeline.p"), ch("ae-title.A")]

    def run(change):
        if change.address == "model.a":
            raise KeyboardInterrupt
    # KeyboardInterrupt raised in a worker surfaces in the waiting main thread, as Ctrl-C does.
    result = walk(changes, run, parallelism=2)
    assert not result.ok and result.failed[-1][0] == "(interrupted)"
    assert result.not_done == ["pipeline.p", "ae-title.A"]
