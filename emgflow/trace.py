"""Latency from per-hop header stamps: end to end and per hop, with percentile summaries."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CAPACITY = 200_000


class LatencyLog:
    """Records, for each received message, end-to-end latency (first send -> this receive) and
    each hop's transport time, in microseconds. Bounded: keeps the newest CAPACITY entries."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.e2e = np.zeros(capacity)
        self.hops: dict[str, np.ndarray] = {}
        self.n = 0

    def add(self, trace: Sequence[Sequence[Any]], rx_ns: int) -> None:
        i = self.n % self.capacity
        self.e2e[i] = (rx_ns - trace[0][2]) / 1000
        for k, (a, b) in enumerate(zip(trace, list(trace[1:]) + [[None, rx_ns, 0]])):
            key = f"{k}:{a[0]}->{b[0] or '*'}"
            arr = self.hops.get(key)
            if arr is None:
                arr = self.hops[key] = np.zeros(self.capacity)
            arr[i] = (b[1] - a[2]) / 1000
        self.n += 1

    def _values(self, arr: np.ndarray, last: int | None = None) -> np.ndarray:
        n = min(self.n, self.capacity)
        vals = arr[:n] if self.n <= self.capacity else np.roll(arr, -(self.n % self.capacity))
        return vals[-last:] if last else vals

    def summary(self, last: int = 2000) -> dict[str, float]:
        """p50/p99/max of the newest ``last`` end-to-end latencies (cheap: used in heartbeats)."""
        if not self.n:
            return {}
        return percentiles(self._values(self.e2e, last))

    def export(self) -> dict[str, list[float]]:
        out = {"e2e_us": self._values(self.e2e).tolist()}
        out.update({f"hop {k}": self._values(v).tolist() for k, v in self.hops.items()})
        return out


def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return {"n": 0}
    p50, p99 = np.percentile(arr, [50, 99])
    return {"n": int(arr.size), "p50_us": float(p50), "p99_us": float(p99), "max_us": float(arr.max())}
