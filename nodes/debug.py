"""Sinks for looking at a stream: print a summary line, or discard (benchmarks)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from emgflow import In, Msg, Node, Param


class Print(Node):
    """Print one line per `every` messages: start index, shape and the newest row to 3 decimals.

    A row of more than `SHOWN` values is shortened to its first and last `EDGE` values around
    ``...``, so a message never takes more than one line; a message with no rows shows ``last=[]``."""

    kind = "print"
    SHOWN: ClassVar[int] = 16
    EDGE: ClassVar[int] = 3
    every = Param(int, 1, ge=1, help="print one message in this many")
    in_ = In(help="any stream")

    def setup(self) -> None:
        self.seen = 0

    def process(self, msg: Msg) -> None:
        if self.seen % self.every == 0:
            data = msg.data
            newest = data.reshape(1) if data.ndim == 0 else data[-1:].reshape(-1)  # 0 rows: empty
            print(f"{self.name} start={msg.start} shape={data.shape} last=[{self.summary(newest)}]", flush=True)
        self.seen += 1

    @classmethod
    def summary(cls, values: np.ndarray) -> str:
        """Values separated by spaces (floats to 3 decimals), the middle elided past `SHOWN` values."""
        fmt = "{:.3f}".format if values.dtype.kind == "f" else str
        items = values.tolist()
        if len(items) <= cls.SHOWN:
            return " ".join(map(fmt, items))
        return " ".join([*map(fmt, items[:cls.EDGE]), "...", *map(fmt, items[-cls.EDGE:])])


class Discard(Node):
    """Discard everything (the runtime still records latency): the benchmark sink."""

    kind = "discard"
    in_ = In(help="any stream")

    def process(self, msg: Msg) -> None:
        return None
