"""Amplitude envelopes: windowed RMS and MAV, per-sample rectification and causal moving average.

The windowed kinds ride on ``emgflow.streaming.SlidingWindows``; ``moving_average`` on
``emgflow.streaming.TrailingWindows`` (one window per input sample, zeros before the start).
"""

from __future__ import annotations

import numpy as np

from emgflow.params import Param
from emgflow.ports import Out
from emgflow.streaming import RowwiseNode, TrailingWindows, WindowedNode


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


class Rectify(RowwiseNode):
    """Full-wave rectification, sample by sample (float64 output)."""

    kind = "rectify"
    out = Out(help="|input|, same rows")

    def rows(self, data: np.ndarray) -> np.ndarray:
        return np.abs(data.astype(np.float64))


class MovingAverage:
    """Causal moving average with state across chunks: ``y[n] = mean(x[n-window+1 .. n])``.

    Samples before the stream's start count as zero, exactly like
    ``scipy.signal.lfilter(np.ones(window) / window, 1, x, axis=0)``.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self._windows = TrailingWindows(window)

    def push(self, x: np.ndarray) -> np.ndarray:
        """Averages for the rows of ``x`` (samples x channels), one output row per input row."""
        return np.mean(self._windows.push(x), axis=1)


class MovingAverageNode(RowwiseNode):
    """Causal per-sample moving average (zero initial state); same rows as the input."""

    kind = "moving_average"
    out = Out(help="moving average, same rows")
    window = Param(int, 40, ge=1, unit="samples", help="number of most recent samples averaged")

    def setup(self) -> None:
        super().setup()
        self._avg = MovingAverage(self.window)

    def rows(self, data: np.ndarray) -> np.ndarray:
        return self._avg.push(data)
