"""Synthetic source for benchmarks and tests: a counter pattern at a fixed message rate."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from emgflow import Msg, Node, Out, Param, StreamInfo, now_ns
from emgflow.clock import sleep_until
from emgflow.codec import MESSAGE_ROWS, MESSAGE_S, max_rows
from emgflow.errors import ParamError


class Pulse(Node):
    """Emit `samples` x `channels` blocks at `rate` messages/s; row values are their sample index,
    so a consumer can check that nothing was lost, repeated or reordered."""

    kind = "pulse"
    rate = Param(float, 200.0, gt=0, unit="msg/s", help="messages per second")
    samples = Param(int, 1, ge=1, help="rows (samples) per message")
    channels = Param(int, 8, ge=1, help="columns (channels) per message")
    count = Param(int, None, nullable=True, ge=1, help="messages to send, then end the stream (null: forever)")
    dtype = Param(str, "float32", choices=("float32", "float64", "int16", "int8"), help="payload dtype")
    out = Out(help="(samples, channels) blocks")

    def describe(self, inputs):
        most = max_rows(self.rate * self.samples)
        if self.samples > most:
            raise ParamError("samples", f"{self.samples} rows per message exceed the {most} an edge of this stream carries",
                             f"a message carries at most {MESSAGE_S:g} s of its stream or {MESSAGE_ROWS} rows")
        return {"out": StreamInfo(rate=self.rate * self.samples, channels=self.channels)}

    def generate(self) -> Iterator[Msg | None]:
        period_ns = int(1e9 / self.rate)
        t0 = now_ns()
        base = np.arange(self.samples, dtype=np.float64)[:, None] + np.zeros((1, self.channels))
        k = 0
        while self.count is None or k < self.count:
            due = t0 + k * period_ns
            if not sleep_until(due, max_sleep_s=0.02):
                yield None
                continue
            start = k * self.samples
            data = (base + start).astype(self.dtype)
            yield Msg(data=data, rate=self.rate * self.samples, start=start, t_acq=now_ns())
            k += 1
