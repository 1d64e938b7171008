"""Heartbeats from a thread of their own, on a socket of their own.

A node busy in a long call, or a send that waits on a consumer that does not read, still beats, and
says so (``stalled``: which node, which output, for how long), so the supervisor can name a stalled
consumer instead of killing its producer as hung. Only a process that is stopped or wedged falls
silent, and the supervisor notices that within ``HANG_TIMEOUT_S`` (supervisor.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import zmq

from . import control
from .hosted import Hosted
from .keys import Curve, Gate

HEARTBEAT_S = 0.25


class Heartbeat(threading.Thread):
    def __init__(self, ctx: zmq.Context, name: str, endpoint: str, hosted: dict[str, Hosted],
                 stats: Callable[[], dict[str, Any]], loop_age: Callable[[], float],
                 curve: Curve | None = None, gate: Gate | None = None) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, (name + control.BEAT).encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.client(self.sock)
        self.sock.connect(endpoint)
        self.hosted, self.stats, self.loop_age, self.gate = hosted, stats, loop_age, gate
        self.done = threading.Event()
        self._sent: dict[str, int] = {}
        self._since: dict[str, float] = {}

    def run(self) -> None:
        try:
            while not self.done.wait(HEARTBEAT_S):
                self.sock.send(control.pack(control.HB, stats=self.stats(), stalled=self.stalled(),
                                            busy_s=self.loop_age(), refused=self.gate.refused if self.gate else 0),
                               zmq.NOBLOCK)
        finally:
            self.sock.close()

    def stalled(self) -> dict[str, dict[str, Any]]:
        """Nodes whose send has not returned since the last beat: output port and seconds waited."""
        now, out = time.monotonic(), {}
        for name, h in self.hosted.items():
            port, sent = h.sending, h.sent
            if port is not None and self._sent.get(name) == sent:
                since = self._since.setdefault(name, now - HEARTBEAT_S)
                out[name] = {"port": port, "s": round(now - since, 2)}
            else:
                self._since.pop(name, None)
            self._sent[name] = sent
        return out

    def close(self) -> None:
        self.done.set()
        self.join()
