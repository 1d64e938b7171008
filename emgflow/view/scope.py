"""What a browser scope shows of one stream: the newest rows, decimated by stream index.

Decimation keeps the rows whose stream index is a multiple of ``step`` (from ``Msg.start``), so the
display is the same whatever the chunking and equals ``x[::step]`` offline. The ring keeps the newest
``capacity`` kept rows; each browser reads on from its own cursor.
"""

from __future__ import annotations

import math

import numpy as np

from ..message import Msg

MAX_DISPLAY_HZ = 500.0   # rows per second a scope draws at most: a 2048 Hz stream keeps every 5th row
MAX_COLUMNS = 64         # columns drawn at most (an image stream is flattened; the rest are left out)
CAPACITY = 8192          # kept rows: 16 s at the display-rate cap


def display_step(rate: float) -> int:
    """Keep one row in ``step`` so a stream of ``rate`` rows/s draws at most MAX_DISPLAY_HZ rows/s."""
    return max(1, math.ceil(rate / MAX_DISPLAY_HZ)) if rate > 0 else 1


class Scope:
    """A ring of decimated rows of one stream, with their times (s: stream index / rate)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.t = np.zeros(capacity)
        self.y: np.ndarray | None = None     # (capacity, columns), sized by the first message
        self.columns = 0                     # columns of the stream (before the MAX_COLUMNS cap)
        self.rate = 0.0
        self.step = 1
        self.total = 0                       # rows ever kept; a cursor counts in these

    def add(self, msg: Msg, rx_s: float) -> None:
        """Keep this message's rows at multiples of ``step``; ``rx_s`` times rows of an irregular stream."""
        data = msg.data.reshape(len(msg.data), -1) if msg.data.ndim else msg.data.reshape(1, 1)
        if self.y is None or data.shape[1] != self.columns:
            self._reset(msg.rate, data.shape[1])
        if msg.rate > 0:
            first = -msg.start % self.step
            rows = data[first::self.step, :MAX_COLUMNS]
            t = (msg.start + first + self.step * np.arange(len(rows))) / msg.rate
        else:
            rows = data[:, :MAX_COLUMNS]
            t = np.full(len(rows), rx_s)
        rows, t = rows[-self.capacity:], t[-self.capacity:]
        idx = (self.total + np.arange(len(rows))) % self.capacity
        self.t[idx] = t
        self.y[idx] = rows
        self.total += len(rows)

    def _reset(self, rate: float, columns: int) -> None:
        self.rate, self.columns, self.step = rate, columns, display_step(rate)
        self.y = np.zeros((self.capacity, min(columns, MAX_COLUMNS)), np.float32)
        self.total = 0

    def since(self, cursor: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Rows kept after ``cursor`` (the oldest ones if the ring has moved past it): new cursor, t, y."""
        if self.y is None:
            return 0, np.zeros(0), np.zeros((0, 0), np.float32)
        cursor = min(max(cursor, self.total - self.capacity), self.total) if cursor <= self.total else 0
        idx = np.arange(cursor, self.total) % self.capacity
        return self.total, self.t[idx], self.y[idx]
