"""Acquisition time of every sample of a device that sends no timestamps, from arrival times alone."""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np


class SampleClock:
    """Acquisition time (ns) of every sample index, fitted to notification arrival times.

    A notification arrives some latency after its newest sample was acquired: a floor (radio,
    USB, parsing) plus positive jitter (connection events, scheduling, the GIL). So the points
    (index, arrival) lie on or above a line whose slope is the device's sample period in host
    nanoseconds, and that line is their lower envelope. The fit is the linear program of Moon,
    Skelly & Towsley (1999, "Estimation and removal of clock skew from network delay
    measurements"): the line under every point with the least summed distance to them, which
    is the lower convex hull's edge above the points' mean index. Points are reduced to one
    minimum per ``block`` arrivals and kept for ``window_s`` seconds, so the slope follows
    crystal drift and a refit costs O(window / block). Until they span ``min_span_s`` the slope
    is nominal; a fitted slope is clamped to ``max_skew`` of nominal. Between refits a point
    below the line pulls it down at once, so no sample is ever dated after its arrival.
    Times include the latency floor, which arrival times alone cannot reveal.
    """

    def __init__(self, rate: float, *, block: int = 50, window_s: float = 30.0, min_span_s: float = 2.0,
                 max_skew: float = 0.02) -> None:
        self.nominal = 1e9 / rate
        self.block, self.window = block, window_s * rate
        self.min_span, self.max_skew = min_span_s * rate, max_skew
        self.reset()

    def reset(self) -> None:
        """Forget every point (a new connection may have a new latency floor)."""
        self._origin: tuple[int, int] | None = None
        self._blocks: deque[tuple[float, float]] = deque()
        self._current: tuple[float, float] | None = None
        self._count = 0
        self.slope = self.nominal
        self._offset = 0.0

    @property
    def rate(self) -> float:
        """The fitted sample rate, Hz."""
        return 1e9 / self.slope

    def add(self, index: int, arrival_ns: int) -> None:
        """Sample ``index`` (the newest of a notification) arrived at ``arrival_ns``."""
        if self._origin is None:
            self._origin = (index, arrival_ns)
        x, t = float(index - self._origin[0]), float(arrival_ns - self._origin[1])
        if self._current is None or t - self.nominal * x < self._current[1] - self.nominal * self._current[0]:
            self._current = (x, t)
        self._count += 1
        if self._count >= self.block:
            self._blocks.append(self._current)
            while self._blocks[-1][0] - self._blocks[0][0] > self.window:
                self._blocks.popleft()
            self._current, self._count = None, 0
            self._refit()
        if t < self._offset + self.slope * x:
            self._offset = t - self.slope * x

    def time_ns(self, index: int) -> int:
        """Fitted acquisition time of sample ``index``."""
        if self._origin is None:
            raise RuntimeError("SampleClock has no points yet")
        return self._origin[1] + round(self._offset + self.slope * (index - self._origin[0]))

    def index_at(self, t_ns: int) -> float:
        """The (fractional) sample index the fit says was acquired at ``t_ns``."""
        if self._origin is None:
            raise RuntimeError("SampleClock has no points yet")
        return self._origin[0] + (t_ns - self._origin[1] - self._offset) / self.slope

    def _refit(self) -> None:
        points = list(self._blocks)
        xs = np.array([p[0] for p in points])
        ts = np.array([p[1] for p in points])
        slope = self.nominal
        if xs[-1] - xs[0] >= self.min_span:
            hull = _lower_hull(points)
            k = max(0, min(bisect.bisect_right([p[0] for p in hull], float(xs.mean())) - 1, len(hull) - 2))
            (x1, t1), (x2, t2) = hull[k], hull[k + 1]
            slope = float(np.clip((t2 - t1) / (x2 - x1), self.nominal * (1 - self.max_skew),
                                  self.nominal * (1 + self.max_skew)))
        self.slope = slope
        self._offset = float(np.min(ts - slope * xs))


def _lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain)."""
    hull: list[tuple[float, float]] = []
    for p in points:
        while len(hull) >= 2 and ((hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1])
                                  - (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0])) <= 0:
            hull.pop()
        hull.append(p)
    return hull
