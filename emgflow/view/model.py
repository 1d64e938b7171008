"""What the page shows of a running graph, as plain JSON-able data: the wiring laid out in columns,
the per-node table (the terminal's columns), per-edge rates and drops, and the tappable streams.

Everything here reads the Supervisor through its public surface (``graph``, ``procs`` with
``.state``, ``.stats``, ``.restarts``, and ``endpoints()``: where each running output listens).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..graph import Graph
from ..supervisor import NodeProc

RATE_WINDOW_S = 2.0   # rates are messages over the last two seconds: a stall shows within them


def layout(graph: Graph) -> dict[str, Any]:
    """Nodes placed in columns by depth (longest path from a source) and rows within a column."""
    depth: dict[str, int] = {}
    for nid in graph.order:  # producers come first
        depth[nid] = max((depth[e.source] + 1 for e in graph.nodes[nid].inputs.values()), default=0)
    rows: dict[int, int] = {}
    nodes = []
    for nid in graph.order:
        col = depth[nid]
        nodes.append({"id": nid, "type": graph.nodes[nid].type, "col": col, "row": rows.get(col, 0)})
        rows[col] = rows.get(col, 0) + 1
    edges = [{"id": f"{e.node}.{e.port}", "source": e.source, "output": e.output, "node": e.node,
              "port": e.port, "policy": e.policy} for n in graph.nodes.values() for e in n.inputs.values()]
    return {"name": graph.name, "description": graph.description, "nodes": nodes, "edges": edges}


def node_row(p: NodeProc) -> dict[str, Any]:
    """One node's line of the table, from its latest heartbeat (or its final report)."""
    s = p.stats or {}
    ins = s.get("in", {}).values()
    lat = s.get("latency", {})
    return {"state": p.state, "type": p.spec.type, "restarts": p.restarts,
            "in": sum(v["received"] for v in ins), "out": s.get("sent", 0),
            "dropped": sum(v["dropped"] for v in ins), "gaps": sum(v["gaps"] for v in ins),
            "bad": s.get("malformed", 0),
            "p50_ms": lat["p50_us"] / 1000 if "p50_us" in lat else None,
            "p99_ms": lat["p99_us"] / 1000 if "p99_us" in lat else None,
            "counters": s.get("counters") or {}}


class StatsModel:
    """Turns ``procs`` into table rows and edge figures, with rates over the last RATE_WINDOW_S."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.history: deque[tuple[float, dict[str, int]]] = deque()

    def snapshot(self, procs: dict[str, NodeProc], now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        rows = {nid: node_row(p) for nid, p in procs.items()}
        counts = {nid: r["in"] or r["out"] for nid, r in rows.items()}
        edges = {}
        for nid, p in procs.items():
            for port, v in (p.stats or {}).get("in", {}).items():
                counts[f"{nid}.{port}"] = v["received"]
                edges[f"{nid}.{port}"] = {"received": v["received"], "dropped": v["dropped"], "gaps": v["gaps"]}
        self.history.append((now, counts))
        while len(self.history) > 2 and now - self.history[1][0] >= RATE_WINDOW_S:
            self.history.popleft()
        t0, old = self.history[0]
        dt = now - t0
        # a restarted node counts from zero again: no negative rate
        rate = {k: max(0.0, (v - old.get(k, 0)) / dt) if dt > 0 else 0.0 for k, v in counts.items()}
        for nid, r in rows.items():
            r["rate"] = rate[nid]
        for eid, e in edges.items():
            e["rate"] = rate[eid]
        return {"nodes": rows, "edges": edges}
