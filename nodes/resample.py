"""Integer-factor decimation behind a causal anti-alias low-pass whose state is kept across chunks."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import signal

from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard

from .filters import SosFilter


def antialias(factor: int, order: int = 8, cutoff: float = 0.8) -> np.ndarray:
    """Butterworth low-pass SOS with its corner at ``cutoff`` x the output Nyquist (normalised units)."""
    return signal.butter(order, cutoff / factor, btype="lowpass", output="sos")


def decimate(x: np.ndarray, factor: int, sos: np.ndarray) -> np.ndarray:
    """Offline twin: filter the whole recording from rest, keep every ``factor``-th sample from the first."""
    return signal.sosfilt(sos, np.asarray(x, dtype=np.float64), axis=0)[::factor]


class Decimator:
    """Stateful ``decimate``: output row ``j`` is filtered input sample ``j * factor``."""

    def __init__(self, factor: int, sos: np.ndarray) -> None:
        self.factor = factor
        self._filter = SosFilter(sos, "zero")
        self.samples_seen = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        y = self._filter.push(x)
        first = -self.samples_seen % self.factor  # offset in y of the next kept sample
        self.samples_seen += len(y)
        return y[first::self.factor]


class Decimate(Node):
    """Keep every ``factor``-th sample after a Butterworth anti-alias low-pass (output rate = rate / factor)."""

    kind = "decimate"
    in_ = In(help="samples x channels")
    out = Out(help="decimated samples (float64); start counts output rows")
    factor = Param(int, 2, ge=2, help="keep one sample in this many")
    order = Param(int, 8, ge=1, le=16, help="Butterworth order of the anti-alias low-pass")
    cutoff = Param(float, 0.8, gt=0, lt=1, help="anti-alias corner as a fraction of the output Nyquist frequency")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        rate = info.rate / self.factor if info.rate else info.rate
        return {"out": StreamInfo(rate=rate, channels=info.channels, names=info.names)}

    def sizes(self, rate: float) -> tuple[int, int]:
        """(window, step) in input samples: output row ``j`` is input sample ``j * factor``, so an
        offline pipeline labels each row at the right sample."""
        return 1, self.factor

    def setup(self) -> None:
        self._guard = StreamGuard(self)
        self._decimator = Decimator(self.factor, antialias(self.factor, self.order, self.cutoff))

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        first_out = -(-self._decimator.samples_seen // self.factor)  # index of the next output row
        y = self._decimator.push(accepted[0])
        if not len(y):
            return None
        return msg.replace(data=y, rate=msg.rate / self.factor, start=first_out, trace=list(msg.trace))
