"""Amplitude envelopes: windowed RMS and MAV, per-sample rectification and causal moving average.

The windowed kinds ride on ``emgflow.streaming.SlidingWindows``; so does ``moving_average``
(a step-1 window primed with ``window - 1`` zeros, so it yields one output per input sample).
"""

from __future__ import annotations

import numpy as np

from emgflow.message import Msg
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import SlidingWindows, StreamGuard, WindowedNode


def rms(windows: np.ndarray) -> np.ndarray:
    """Root mean square of each window: ``(n, window, channels) -> (n, channels)``."""
    w = np.asarray(windows, dtype=np.float64)
    return np.sqrt(np.mean(w * w, axis=1))


def mav(windows: np.ndarray) -> np.ndarray:
    """Mean absolute value of each window: ``(n, window, channels) -> (n, channels)``."""
    return np.mean(np.abs(np.asarray(windows, dtype=np.float64)), axis=1)


class Rms(WindowedNode):
    """Sliding-window RMS per channel; one row per window, at input rate / step."""

    kind = "rms"

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return rms(windows)


class Mav(WindowedNode):
    """Sliding-window mean absolute value per channel; one row per window, at input rate / step."""

    kind = "mav"

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return mav(windows)


class Rectify(Node):
    """Full-wave rectification, sample by sample (float64 output)."""

    kind = "rectify"
    in_ = In(help="samples x channels")
    out = Out(help="|input|, same rows")

    def setup(self) -> None:
        self._guard = StreamGuard(self)

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        return msg.replace(data=np.abs(data.astype(np.float64)), start=start, trace=list(msg.trace))


class MovingAverage:
    """Causal moving average with state across chunks: ``y[n] = mean(x[n-window+1 .. n])``.

    Samples before the stream's start count as zero, exactly like
    ``scipy.signal.lfilter(np.ones(window) / window, 1, x, axis=0)``.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._windows = SlidingWindows(window, 1)
        self._primed = False

    def push(self, x: np.ndarray) -> np.ndarray:
        """Averages for the rows of ``x`` (samples x channels), one output row per input row."""
        x = np.asarray(x, dtype=np.float64)
        if not self._primed:
            self._windows.push(np.zeros((self.window - 1,) + x.shape[1:]))
            self._primed = True
        return np.mean(self._windows.push(x), axis=1)


class MovingAverageNode(Node):
    """Causal per-sample moving average (zero initial state); same rows as the input."""

    kind = "moving_average"
    in_ = In(help="samples x channels")
    out = Out(help="moving average, same rows")
    window = Param(int, 40, ge=1, unit="samples", help="number of most recent samples averaged")

    def setup(self) -> None:
        self._guard = StreamGuard(self)
        self._avg = MovingAverage(self.window)

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        return msg.replace(data=self._avg.push(data), start=start, trace=list(msg.trace))
