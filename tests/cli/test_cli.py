"""The CLI's read-only commands, and the node library's self-documentation."""

from __future__ import annotations

from typer.testing import CliRunner

from emgflow.cli.app import app
from emgflow.registry import import_errors, registered, stock_nodes

runner = CliRunner()


def test_every_stock_node_imports_and_documents_its_params():
    nodes = stock_nodes()
    assert not import_errors(), import_errors()
    assert set(nodes) == set(registered())
    for kind, cls in nodes.items():
        assert cls.kind == kind, f"entry point {kind!r} names {cls.__name__}, whose kind is {cls.kind!r}"
    for required in ("replay", "rms", "relay", "csv", "npz", "print", "pulse", "discard"):
        assert required in nodes
    for kind, cls in nodes.items():
        assert cls.doc(), f"{kind} has no docstring"
        for p in cls.params.values():
            assert p.help, f"{kind}.{p.name} has no help"


def test_nodes_lists_and_documents():
    result = runner.invoke(app, ["nodes"])
    assert result.exit_code == 0 and "rms" in result.output and "replay" in result.output
    result = runner.invoke(app, ["nodes", "rms"])
    assert result.exit_code == 0 and "window" in result.output and "step" in result.output
    assert runner.invoke(app, ["nodes", "rmss"]).exit_code == 2


def test_graph_text_and_dot(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("nodes:\n  src: {type: pulse, params: {rate: 100}}\n"
                    "  r: {type: relay, inputs: {in: {from: src.out, policy: latest}}}\n")
    text = runner.invoke(app, ["graph", str(path)])
    assert text.exit_code == 0 and "in <- src.out" in text.output and "latest" in text.output
    dot = runner.invoke(app, ["graph", str(path), "--dot"])
    assert dot.exit_code == 0 and '"src" -> "r"' in dot.output and "style=dashed" in dot.output


def test_shipped_graphs_validate():
    from pathlib import Path

    graphs = sorted(Path(__file__).resolve().parents[2].joinpath("graphs").glob("*.yaml"))
    assert graphs
    result = runner.invoke(app, ["validate", *map(str, graphs)])
    assert result.exit_code == 0, result.output
