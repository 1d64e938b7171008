"""Live latency histograms per receiving node, read from the per-hop traces of tapped messages.

A message's trace ``[[node, rx_ns, tx_ns], ...]`` ends with the node that sent it: its receive stamp
minus the first send is the end-to-end latency at that node, so tapping a node's output gives that
node's histogram. A sink has no output to tap: the page shows its heartbeat p50 / p99 instead.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

EDGES_MS = np.geomspace(0.05, 1000.0, 44)   # log bins from 50 us to 1 s
WINDOW = 2000                               # the newest latencies per node that the histogram counts


class LatencyHistograms:
    """Per node, a ring of the newest WINDOW latencies (ms) and their histogram on demand."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self.rings: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def add(self, trace: Sequence[Sequence[Any]]) -> None:
        """Count the latency at the node that sent this message (the trace's last entry): its
        receive time minus the first send. Sources (a trace of one) have none."""
        if len(trace) < 2:
            return
        node, rx_ns = trace[-1][0], trace[-1][1]
        ring = self.rings.get(node)
        if ring is None:
            ring = self.rings[node] = np.zeros(self.window)
            self.counts[node] = 0
        ring[self.counts[node] % self.window] = (rx_ns - trace[0][2]) / 1e6
        self.counts[node] += 1

    def snapshot(self) -> dict[str, Any]:
        """Bin edges (ms) and, per node, the counts, p50 / p99 of its newest latencies and how many."""
        nodes = {}
        for node, ring in self.rings.items():
            values = ring[:min(self.counts[node], self.window)]
            p50, p99 = np.percentile(values, [50, 99])
            nodes[node] = {"counts": np.histogram(values, EDGES_MS)[0].tolist(), "n": len(values),
                           "p50_ms": float(p50), "p99_ms": float(p99)}
        return {"edges_ms": EDGES_MS.tolist(), "nodes": nodes}
