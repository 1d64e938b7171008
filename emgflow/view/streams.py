"""The streams a view watches: one tap per stream, shared by every browser, opened while someone
looks at it, drained into its scope and into the latency histograms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zmq

from ..codec import MalformedFrame, decode
from .latency import LatencyHistograms
from .scope import Scope
from .tap import Tap


@dataclass
class Watched:
    """One open tap and what has been read from it."""

    tap: Tap
    scope: Scope = field(default_factory=Scope)
    bad: int = 0          # frame sets that are not emgflow messages
    gaps: int = 0         # sequence numbers skipped (the tap queue dropped, or the producer restarted)
    eos: bool = False
    last_seq: int | None = None

    def counts(self) -> dict[str, Any]:
        return {"received": self.tap.received, "dropped": self.tap.dropped, "gaps": self.gaps,
                "bad": self.bad, "eos": self.eos}


class Streams:
    """``endpoints``: stream name (``node.port``) -> (endpoint, topic) of every tappable output."""

    def __init__(self, endpoints: dict[str, tuple[str, str]]) -> None:
        self.endpoints = endpoints
        self.ctx = zmq.Context()
        self.open: dict[str, Watched] = {}
        self.latency = LatencyHistograms()

    def keep(self, names: set[str]) -> None:
        """Open taps on ``names`` (known streams only) and close every other one."""
        for name in set(self.open) - names:
            self.open.pop(name).tap.close()
        for name in names - set(self.open):
            if name in self.endpoints:
                self.open[name] = Watched(Tap(self.ctx, *self.endpoints[name]))

    def poll(self) -> None:
        """Decode everything the taps queued into scopes and latency histograms."""
        for w in self.open.values():
            for frames, rx_s in w.tap.drain():
                try:
                    msg, eos = decode(frames)
                except MalformedFrame:
                    w.bad += 1
                    continue
                if w.last_seq is not None and msg.seq != w.last_seq + 1:
                    w.gaps += 1
                w.last_seq = msg.seq
                if eos:
                    w.eos = True
                    continue
                w.scope.add(msg, rx_s)
                if msg.trace:
                    self.latency.add(msg.trace)

    def close(self) -> None:
        self.keep(set())
        self.ctx.term()
