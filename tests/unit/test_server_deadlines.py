"""CallDeadlines' watchdog: deadlines fire in time whatever order they arrive in."""

from __future__ import annotations

import threading
import time

from soapattest.server.deadlines import CallDeadlines


def _wait_until(predicate: object, limit: float = 5.0) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_a_shorter_deadline_after_a_long_one_still_fires() -> None:
    deadlines = CallDeadlines()
    release = threading.Event()
    long_calls = []

    def hold() -> None:
        with deadlines.guard(60.0) as call:
            long_calls.append(call)
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert _wait_until(lambda: long_calls)
    with deadlines.guard(0.05) as short:
        assert _wait_until(lambda: short.expired)
    release.set()
    t.join()
    assert not long_calls[0].expired  # the long call finished in time: not cut off


def test_a_call_that_ends_in_time_is_not_cut_off() -> None:
    deadlines = CallDeadlines()
    with deadlines.guard(0.2) as call:
        pass
    time.sleep(0.3)
    assert not call.expired


def test_finished_calls_do_not_pile_up_in_the_heap() -> None:
    deadlines = CallDeadlines()
    for _ in range(2000):
        with deadlines.guard(60.0):
            pass
    assert len(deadlines._heap) <= 64 + 1
    with deadlines.guard(60.0), deadlines.guard(60.0):
        assert len(deadlines._live) == 2
