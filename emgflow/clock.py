"""Pacing on the runtime clock (``now_ns``): sleep to an absolute deadline, spinning the last stretch."""

from __future__ import annotations

import time

from .clocksync import now_ns

SPIN_NS = 200_000  # the scheduler overshoots sleeps by ~50-100 us; spin the last 200 us for accuracy


def sleep_until(deadline_ns: int, max_sleep_s: float | None = None) -> bool:
    """Wait until ``deadline_ns`` (``now_ns`` clock). With ``max_sleep_s``, return False early if the wait
    would be longer, so a caller can stay responsive; True once the deadline is reached."""
    remaining = deadline_ns - now_ns()
    if max_sleep_s is not None and remaining > max_sleep_s * 1e9 + SPIN_NS:
        time.sleep(max_sleep_s)
        return False
    if remaining > SPIN_NS:
        time.sleep((remaining - SPIN_NS) / 1e9)
    while now_ns() < deadline_ns:
        pass
    return True
