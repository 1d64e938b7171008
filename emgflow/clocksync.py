"""placeholder: the clock branch replaces this module.

The interface the supervisor and the agent code against: ``now_ns``, ``answer`` (the agent's side of
an NTP-style exchange) and ``Tracker`` (the supervisor's side, one per remote host).
"""

from __future__ import annotations

import time
from typing import Any

now_ns = time.monotonic_ns


def answer(msg: dict[str, Any]) -> dict[str, Any]:
    """The reply to ``{"t": "clock", "id": n, "t0": ns}``: stamped on receipt (t1) and on sending (t2)."""
    t1 = now_ns()
    return {"t": "clock", "id": int(msg["id"]), "t0": int(msg["t0"]), "t1": t1, "t2": now_ns()}


class Tracker:
    """One remote clock's offset (remote minus ours), from the latest exchange (plain midpoint)."""

    def __init__(self) -> None:
        self.offset_ns = 0
        self.uncertainty_ns = 0
        self._id = 0

    def request(self) -> dict[str, Any]:
        self._id += 1
        return {"t": "clock", "id": self._id, "t0": now_ns()}

    def add(self, reply: dict[str, Any], t3_ns: int) -> None:
        t0, t1, t2 = int(reply["t0"]), int(reply["t1"]), int(reply["t2"])
        self.offset_ns = ((t1 - t0) + (t2 - t3_ns)) // 2
        self.uncertainty_ns = ((t3_ns - t0) - (t2 - t1)) // 2
