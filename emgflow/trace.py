"""Latency from per-hop header stamps: end to end and per hop, with percentile summaries."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

CAPACITY = 20_000  # newest entries kept per series: 100 s at 200 messages/s, 160 kB each
MAX_KEYS = 256  # per-hop series kept (2 per hop of each distinct trace path); frames name what they like

class LatencyLog:
    """Records, for each received message, end-to-end latency (first send -> this receive), each
    hop's transport time (``k:a->b``, send to receive) and each upstream node's compute time
    (``k:node``, receive to send), in microseconds. Bounded: keeps the newest CAPACITY entries, in
    rings written through once when made, so a node's memory is flat from its first message on
    (untouched pages would otherwise grow its resident size for as long as the ring fills)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.e2e = _ring(capacity)
        self.hops: dict[str, np.ndarray] = {}
        self._keys: dict[tuple, list[tuple[str, str]]] = {}
        self.n = 0
        self.overflow = 0  # messages whose trace path was one too many to break down per hop

    def _keys_for(self, names: tuple) -> list[tuple[str, str]] | None:
        """The per-hop keys of a trace path; None when it would need more than MAX_KEYS series (memory
        stays bounded whatever names arriving frames carry: end-to-end latency is still kept)."""
        keys = self._keys.get(names)
        if keys is None:
            nxt = names[1:] + ("*",)
            keys = [(f"{k}:{a}->{b}", f"{k}:{a}") for k, (a, b) in enumerate(zip(names, nxt))]
            new = {key for pair in keys for key in pair} - self.hops.keys()
            if len(self.hops) + len(new) > MAX_KEYS:
                self.overflow += 1
                return None
            self._keys[names] = keys
            for hop, node in keys:
                self.hops.setdefault(hop, _ring(self.capacity))
                self.hops.setdefault(node, _ring(self.capacity))
        return keys

    def add(self, trace: Sequence[Sequence[Any]], rx_ns: int) -> None:
        i = self.n % self.capacity
        self.e2e[i] = (rx_ns - trace[0][2]) / 1000
        keys = self._keys_for(tuple(t[0] for t in trace))
        if keys is None:
            self.n += 1
            return
        hops = self.hops
        for k, (hop, node) in enumerate(keys):
            a = trace[k]
            hops[hop][i] = ((trace[k + 1][1] if k + 1 < len(trace) else rx_ns) - a[2]) / 1000
            hops[node][i] = (a[2] - a[1]) / 1000
        self.n += 1

    def _values(self, arr: np.ndarray, last: int | None = None) -> np.ndarray:
        """The newest ``last`` entries (all kept ones by default), oldest first, without copying the ring."""
        k = min(self.n, self.capacity, last or self.capacity)
        return arr[np.arange(self.n - k, self.n) % self.capacity]

    def summary(self, last: int = 2000) -> dict[str, float]:
        """p50/p99/max of the newest ``last`` end-to-end latencies (cheap: used in heartbeats)."""
        if not self.n:
            return {}
        return percentiles(self._values(self.e2e, last))

    def export(self) -> dict[str, list[float]]:
        out = {"e2e_us": self._values(self.e2e).tolist()}
        out.update({f"hop {k}": self._values(v).tolist() for k, v in self.hops.items()})
        return out


def _ring(capacity: int) -> np.ndarray:
    return np.full(capacity, 0.0)  # written, not np.zeros: its pages are resident now, not one by one


def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    if not arr.size:
        return {"n": 0}
    p50, p99 = np.percentile(arr, [50, 99])
    return {"n": int(arr.size), "p50_us": float(p50), "p99_us": float(p99), "max_us": float(arr.max())}
