"""Sinks for looking at a stream: print a summary line, or discard (benchmarks)."""

from __future__ import annotations

import numpy as np

from emgflow import In, Msg, Node, Param


class Print(Node):
    """Print one line per `every` messages: start index, shape and the newest row."""

    kind = "print"
    every = Param(int, 1, ge=1, help="print one message in this many")
    in_ = In(help="any stream")

    def setup(self) -> None:
        self.seen = 0

    def process(self, msg: Msg) -> None:
        if self.seen % self.every == 0:
            last = np.array2string(np.asarray(msg.data[-1]) if msg.data.ndim else msg.data, precision=3,
                                   max_line_width=120, threshold=16)
            print(f"{self.name} start={msg.start} shape={msg.data.shape} last={last}", flush=True)
        self.seen += 1


class Discard(Node):
    """Discard everything (the runtime still records latency): the benchmark sink."""

    kind = "discard"
    in_ = In(help="any stream")

    def process(self, msg: Msg) -> None:
        return None
