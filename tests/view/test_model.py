"""The page's model of a graph: columns by depth, the terminal's counters per node, rates per edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from emgflow.graph import load_graph
from emgflow.supervisor import NodeProc
from emgflow.view.model import StatsModel, layout

GRAPH = Path(__file__).with_name("graph.yaml")


@pytest.fixture
def graph(data_dir, monkeypatch):
    monkeypatch.setenv("EMGFLOW_DATA", str(data_dir))
    return load_graph(GRAPH)


def _stats(received: int, dropped: int = 0, sent: int = 0) -> dict:
    return {"in": {"in": {"received": received, "dropped": dropped, "gaps": 1}}, "sent": sent, "malformed": 2,
            "latency": {"p50_us": 1500.0, "p99_us": 4000.0}, "counters": {"frames": 3}}


def test_layout_places_nodes_by_depth(graph):
    g = layout(graph)
    cols = {n["id"]: (n["col"], n["row"]) for n in g["nodes"]}
    assert cols == {"source": (0, 0), "envelope": (1, 0), "hand": (1, 1), "sink": (2, 0), "hand_view": (2, 1)}
    assert {(e["source"], e["output"], e["node"], e["policy"]) for e in g["edges"]} == {
        ("source", "emg", "envelope", "all"), ("envelope", "out", "sink", "all"), ("source", "label", "hand", "latest"),
        ("hand", "pose", "hand_view", "latest")}


def test_rows_sum_the_inputs_and_rates_use_the_last_two_seconds(graph):
    procs = {nid: NodeProc(spec, spec.process) for nid, spec in graph.nodes.items()}
    model = StatsModel(graph)
    procs["hand"].stats, procs["hand"].state = _stats(10, dropped=4), "running"
    model.snapshot(procs, now=100.0)
    procs["hand"].stats = _stats(30, dropped=5)
    snap = model.snapshot(procs, now=101.0)
    row = snap["nodes"]["hand"]
    assert {k: row[k] for k in ("state", "in", "out", "dropped", "gaps", "bad", "p50_ms", "p99_ms")} == {
        "state": "running", "in": 30, "out": 0, "dropped": 5, "gaps": 1, "bad": 2, "p50_ms": 1.5, "p99_ms": 4.0}
    assert row["rate"] == pytest.approx(20.0) and snap["edges"]["hand.in"]["rate"] == pytest.approx(20.0)
    procs["hand"].stats = _stats(40)
    assert model.snapshot(procs, now=104.0)["nodes"]["hand"]["rate"] == pytest.approx(10 / 3)  # window moved on
    procs["hand"].stats = _stats(2)  # a restarted node counts from zero: no negative rate
    assert model.snapshot(procs, now=104.5)["nodes"]["hand"]["rate"] == 0.0
    assert snap["nodes"]["source"]["p50_ms"] is None
