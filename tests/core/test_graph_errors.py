"""A corpus of malformed graphs: each is refused with exit 2 and names file, line and fault."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from emgflow.cli.app import app
from emgflow.graph import load_graph

GOOD_SOURCE = "  src: {type: pulse, params: {rate: 200}}\n"

# (name, graph text, expected line, substring of the message)
CORPUS = [
    ("yaml syntax", "nodes:\n  src: {type: pulse\n  x: 1\n", 3, "YAML syntax error"),
    ("bad indentation", "nodes:\n  src:\n    type: pulse\n   params: {}\n", 4, "YAML syntax error"),
    ("not a mapping", "- just\n- a list\n", 1, "must be a mapping"),
    ("no nodes", "name: empty\n", 1, "'nodes' must be a non-empty mapping"),
    ("empty nodes", "nodes: {}\n", 1, "'nodes' must be a non-empty mapping"),
    ("unknown top key", "name: x\nnodez: {}\nnodes:\n" + GOOD_SOURCE, 2, "unknown top-level key 'nodez'"),
    ("unknown node key", "nodes:\n  src:\n    type: pulse\n    parmas: {rate: 1}\n", 4, "unknown key 'parmas'"),
    ("missing type", "nodes:\n  src:\n    params: {rate: 1}\n", 2, "has no 'type'"),
    ("unknown type", "nodes:\n  src:\n    type: plse\n", 3, "unknown node type 'plse'"),
    ("bad import", "nodes:\n  src:\n    type: nosuchpkg.mod:Thing\n", 3, "cannot import 'nosuchpkg.mod'"),
    ("unknown param", "nodes:\n  src:\n    type: pulse\n    params:\n      rat: 200\n", 5, "unknown parameter"),
    ("param type", "nodes:\n  src:\n    type: pulse\n    params:\n      rate: fast\n", 5, "expected float"),
    ("param range", "nodes:\n  src:\n    type: pulse\n    params:\n      rate: -5\n", 5, "must be > 0"),
    ("param choice", "nodes:\n  src:\n    type: pulse\n    params:\n      dtype: complex\n", 5, "is not one of"),
    ("missing required", "nodes:\n  src:\n    type: csv\n    inputs: {in: x.out}\n  x: {type: pulse}\n", 2, "required parameter"),
    ("duplicate id", "nodes:\n" + GOOD_SOURCE + "  src: {type: pulse}\n", 3, "duplicate key 'src'"),
    ("bad id", "nodes:\n  src.a: {type: pulse}\n", 2, "not a valid name"),
    ("unknown input port", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs: {inn: src.out}\n", 5, "no input port 'inn'"),
    ("unknown source node", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs:\n      in: sorce.out\n", 6, "no node 'sorce'"),
    ("unknown output", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs:\n      in: src.emg\n", 6, "has no output 'emg'"),
    ("bad wire", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs:\n      in: src\n", 6, "expected 'node.output'"),
    ("missing input", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n", 3, "input 'in' is not connected"),
    ("bad policy", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs:\n      in: {from: src.out, policy: newest}\n", 6, "policy must be one of"),
    ("bad queue", "nodes:\n" + GOOD_SOURCE + "  r:\n    type: relay\n    inputs:\n      in: {from: src.out, queue: 0}\n", 6, "queue must be an integer"),
    ("cycle", "nodes:\n  a: {type: relay, inputs: {in: b.out}}\n  b: {type: relay, inputs: {in: a.out}}\n", 2, "cycle in the graph"),
    ("self loop", "nodes:\n  a:\n    type: relay\n    inputs: {in: a.out}\n", 4, "cannot consume its own output"),
    ("bad restart", "nodes:\n  src:\n    type: pulse\n    restart: sometimes\n", 4, "restart must be one of"),
    ("bad transport", "transport: udp\nnodes:\n" + GOOD_SOURCE, 1, "transport must be one of"),
    ("unset env var", "nodes:\n  src:\n    type: pulse\n    params: {rate: '${EMGFLOW_TEST_UNSET_VAR}'}\n", 4, "EMGFLOW_TEST_UNSET_VAR"),
    ("source has no inputs", "nodes:\n  src:\n    type: pulse\n    inputs: {in: x.out}\n  x: {type: pulse}\n", 4, "is a source"),
]


@pytest.mark.parametrize("name,text,line,fault", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_graph_exits_2_with_file_line_and_fault(tmp_path, name, text, line, fault):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert f"{path}:{line}:" in out, out
    assert fault in out, out


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 20


def test_run_refuses_invalid_graph_without_starting(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("nodes:\n  src: {type: pulse, params: {rate: 0}}\n")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2


def test_env_expansion_overrides_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("EMGFLOW_TEST_RATE", "150")
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent("""
        nodes:
          src: {type: pulse, params: {rate: '${EMGFLOW_TEST_RATE}', channels: '${EMGFLOW_TEST_CH:-4}'}}
          rec: {type: npz, inputs: {in: src.out}, params: {path: out/rec.npz}}
        """))
    g = load_graph(path, ["src.samples=2"])
    assert g.nodes["src"].params["rate"] == 150
    assert g.nodes["src"].params["channels"] == 4
    assert g.nodes["src"].params["samples"] == 2
    assert g.nodes["rec"].params["path"] == str(tmp_path / "out" / "rec.npz")
    assert g.order.index("src") < g.order.index("rec")
    assert g.nodes["rec"].streams == {} and g.nodes["src"].streams["out"].rate == 300


def test_bad_override_is_refused(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("nodes:\n  src: {type: pulse}\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--set", "srx.rate=3"])
    assert result.exit_code == 2 and "no node 'srx'" in result.output + result.stderr
