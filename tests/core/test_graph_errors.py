"""A corpus of malformed graphs: each is refused with exit 2 and names file, line and fault."""

from __future__ import annotations

import os
import random
import tempfile
import textwrap

import pytest
import zmq
from typer.testing import CliRunner

from emgflow.cli.app import app
from emgflow.errors import GraphErrors
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
    ("nan param", "nodes:\n  src:\n    type: pulse\n    params:\n      rate: .nan\n", 5, "NaN or infinite"),
    ("inf param", "nodes:\n  src: {type: pulse}\n  hand:\n    type: hand_sim\n    inputs: {in: src.out}\n"
                  "    params: {timeout_ms: .inf}\n", 6, "NaN or infinite"),
    ("nan in a list", "nodes:\n" + GOOD_SOURCE + "  sel:\n    type: select\n    inputs: {in: src.out}\n"
     "    params: {channels: [0, .nan]}\n", 6, "NaN or infinite"),
    ("node id too long for ipc", "nodes:\n  " + "s" * 111 + ": {type: pulse}\n  r: {type: relay, inputs: {in: " + "s" * 111
     + ".out}}\n", 2, "too long for its socket path"),
    ("recorder path not writable", "nodes:\n" + GOOD_SOURCE + "  rec:\n    type: npz\n    inputs: {in: src.out}\n"
     "    params: {path: /proc/x.npz}\n", 6, "cannot write /proc/x.npz"),
    ("alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi")) + "nodes: *i\n",
     1, "expands to more than 100000 values"),
    ("python tag", "nodes:\n  src: {type: !!python/name:os.system pulse}\n", 2, "cannot read this value"),
    ("bad float tag", "nodes:\n  src:\n    type: pulse\n    params: {rate: !!float abc}\n", 4, "cannot read this value"),
    ("number as a param name", "nodes:\n  src:\n    type: pulse\n    params: {1: 2}\n", 4, "must map names to values"),
    ("list as a key", "nodes:\n  ? [a, b]\n  : {type: pulse}\n", 2, "a key must be a plain name or number"),
    ("nan restart delay", "nodes:\n  src:\n    type: pulse\n    restart_delay_s: .nan\n", 4, "must be a finite number"),
    ("chain longer than a trace", "nodes:\n  n0: {type: pulse}\n" + "".join(
        f"  n{i}: {{type: relay, inputs: {{in: n{i - 1}.out}}}}\n" for i in range(1, 66)), 66, "65 nodes down a chain"),
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


@pytest.mark.parametrize("what", ["/dev/zero", "fifo", "folder", "large"])
def test_graph_files_that_are_not_small_regular_files_are_refused_before_reading(tmp_path, what):
    path = {"/dev/zero": "/dev/zero", "fifo": tmp_path / "g.yaml", "folder": tmp_path, "large": tmp_path / "big.yaml"}[what]
    if what == "fifo":
        os.mkfifo(path)  # opening it must not wait for a writer
    if what == "large":
        path.write_text("nodes:\n" + GOOD_SOURCE + "# padding\n" * 120_000)
    result = CliRunner().invoke(app, ["validate", str(path)])
    out = result.output + result.stderr
    assert result.exit_code == 2, out
    assert {"/dev/zero": "not a regular file", "fifo": "not a regular file", "folder": "Is a directory",
            "large": "larger than 1024 KiB"}[what] in out, out


def test_unparsable_override_is_a_clear_error(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("nodes:\n" + GOOD_SOURCE + "  env: {type: rms, inputs: {in: src.out}}\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--set", "env.window=[1,2"])
    out = result.output + result.stderr
    assert result.exit_code == 2 and "--set 'env.window=[1,2': the value is not valid YAML" in out, out
    assert "Traceback" not in out
    bomb = "[&a [1, 1, 1, 1, 1, 1, 1, 1, 1], " + ", ".join(["*a"] * 9) + "]"
    result = CliRunner().invoke(app, ["validate", str(path), "--set", f"env.window={bomb}"])
    assert result.exit_code == 2 and "YAML aliases (*name) are not allowed here" in result.output + result.stderr


@pytest.mark.parametrize("duration", ["-1", "0", "nan", "inf"])
def test_run_refuses_a_duration_that_is_not_a_positive_time(tmp_path, duration):
    path = tmp_path / "g.yaml"
    path.write_text("nodes:\n" + GOOD_SOURCE)
    result = CliRunner().invoke(app, ["run", str(path), f"--duration={duration}"])
    assert result.exit_code == 2 and "not a finite number of seconds > 0" in result.output + result.stderr


def test_recorder_path_that_is_a_folder_or_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    for target, fault in ((tmp_path, "is a folder"), (tmp_path / "file" / "x.csv", "is a file")):
        path = tmp_path / "g.yaml"
        path.write_text("nodes:\n" + GOOD_SOURCE + f"  rec: {{type: csv, inputs: {{in: src.out}}, params: {{path: {target}}}}}\n")
        result = CliRunner().invoke(app, ["validate", str(path)])
        assert result.exit_code == 2 and fault in result.output + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "g.yaml"]  # validation wrote nothing


def test_the_socket_path_limit_is_the_real_one(tmp_path, monkeypatch):
    """An id that exactly fits the 107-byte sun_path validates; one more character does not."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # gettempdir() caches its answer
    try:
        room = 107 - len(os.path.join(tempfile.gettempdir(), "emgflow-xxxxxxxx", ".out"))
        for size, ok in ((room, True), (room + 1, False)):
            node = "s" * size
            path = tmp_path / "g.yaml"
            path.write_text(f"nodes:\n  {node}: {{type: pulse}}\n  r: {{type: relay, inputs: {{in: {node}.out}}}}\n")
            if ok:
                load_graph(path)
                sup_dir = tempfile.mkdtemp(prefix="emgflow-")  # what the supervisor makes
                sock = zmq.Context.instance().socket(zmq.PUB)
                sock.bind(f"ipc://{sup_dir}/{node}.out")  # the kernel takes it
                sock.close(0)
            else:
                with pytest.raises(GraphErrors, match="too long for its socket path"):
                    load_graph(path)
    finally:
        tempfile.tempdir = None


FUZZ_GRAPH = textwrap.dedent("""
    name: fuzz
    transport: ipc
    nodes:
      src: {type: pulse, params: {rate: 200, channels: 4, count: 10}, restart: on-failure, max_restarts: 2}
      sel:
        type: select
        inputs: {in: src.out}
        params: {channels: [0, 2]}
      env: {type: rms, inputs: {in: {from: sel.out, policy: all, queue: 8}}, params: {window: 4, step: 2}}
      rec: {type: csv, inputs: {in: env.out}, params: {path: out.csv, flush_s: 0.5}}
    """)
_PIECES = ["[", "]", "{", "}", ":", "&a", "*a", "!!", "? ", "- ", "\n", "  ", ".nan", ".inf", "-1", "1e400", "'",
           '"', "${X}", "null", "~", "|", ">", "---\n", "\t", "#", ",", "!!binary", "!!set", "<<: ", "=", "\x00", "é"]


def test_a_thousand_mutated_graph_files_give_graph_errors_only(tmp_path):
    """Seeded mutations of a valid graph (YAML tokens inserted, text cut): load_graph either
    succeeds or raises GraphErrors; nothing else escapes as a traceback."""
    rng, path, refused = random.Random(25), tmp_path / "g.yaml", 0
    for _ in range(1000):
        text = list(FUZZ_GRAPH)
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(len(text) + 1)
            if rng.random() < 0.3:
                del text[pos:pos + rng.randint(1, 10)]
            else:
                text[pos:pos] = list(rng.choice(_PIECES)) * rng.randint(1, 3)
        path.write_text("".join(text))
        try:
            load_graph(path)
        except GraphErrors:
            refused += 1
    assert refused > 500
