"""Process groups: several nodes in one OS process, edges inside it as calls, every promise kept."""

from __future__ import annotations

import json
import os
import signal
import textwrap

import numpy as np
from typer.testing import CliRunner

from emgflow.cli.app import app
from emgflow.graph import load_graph

from .procs import alive, children_of, flushed, start_run, wait_for
from .test_runtime import CRASHY


def write(tmp_path, text: str, name: str = "g.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def pipeline(tmp_path, data_dir, out: str, groups: dict[str, str] | None = None):
    """Real DB5 EMG through high-pass and RMS into two recorders (one through a relay), and the cue
    labels through a `latest` edge; ``groups``: node -> group."""
    g = groups or {}
    grp = lambda n: f", group: {g[n]}" if n in g else ""  # noqa: E731
    path = data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat"
    return write(tmp_path, f"""
        name: grouped
        nodes:
          source: {{type: replay, params: {{path: {path}, speed: 0, chunk: 7, stop_s: 15}}{grp("source")}}}
          hp: {{type: highpass, inputs: {{in: source.emg}}, params: {{cutoff: 10.0}}{grp("hp")}}}
          rms: {{type: rms, inputs: {{in: hp.out}}, params: {{window: 40, step: 8}}{grp("rms")}}}
          relay: {{type: relay, inputs: {{in: rms.out}}{grp("relay")}}}
          rec: {{type: npz, inputs: {{in: rms.out}}, params: {{path: {out}/rms.npz}}{grp("rec")}}}
          rec2: {{type: npz, inputs: {{in: relay.out}}, params: {{path: {out}/relay.npz}}{grp("rec2")}}}
          cues: {{type: npz, inputs: {{in: {{from: source.label, policy: latest, queue: 4}}}},
                  params: {{path: {out}/cues.npz}}{grp("cues")}}}
        """, name=f"{out}.yaml")


def recordings(tmp_path, out: str) -> dict[str, dict[str, np.ndarray]]:
    return {name: dict(np.load(tmp_path / out / f"{name}.npz")) for name in ("rms", "relay")}


def test_fused_and_grouped_runs_record_exactly_what_separate_processes_record(tmp_path, data_dir):
    runs = {
        "separate": ([], None),
        "fused": (["--fuse"], None),
        "mixed": ([], {"hp": "features", "rms": "features", "rec2": "sinks", "cues": "sinks"}),
    }
    stats = {}
    for out, (flags, groups) in runs.items():
        (tmp_path / out).mkdir()
        g = pipeline(tmp_path, data_dir, out, groups)
        proc = start_run(g, *flags, "--stats", str(tmp_path / f"{out}.json"))
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        stats[out] = json.loads((tmp_path / f"{out}.json").read_text())["nodes"]
    want = recordings(tmp_path, "separate")
    assert len(want["rms"]["emg"]) == (15 * 200 - 40) // 8 + 1
    for out in ("fused", "mixed"):
        got = recordings(tmp_path, out)
        for name in want:
            assert want[name].keys() == got[name].keys()
            for key in want[name]:
                assert want[name][key].tobytes() == got[name][key].tobytes(), (out, name, key)
    fused = stats["fused"]
    assert {n["process"] for n in fused.values()} == {"fused"}
    assert {stats["mixed"][n]["process"] for n in ("hp", "rms")} == {"features"}
    for nid, n in fused.items():  # in-process edges count like sockets: nothing lost, no gap, nothing bad
        for port in n["in"].values():
            assert port["dropped"] == 0 and port["gaps"] == 0
        assert n["malformed"] == 0
    assert fused["rec"]["in"]["in"]["received"] == stats["separate"]["rec"]["in"]["in"]["received"]
    assert fused["cues"]["in"]["in"]["received"] == stats["separate"]["cues"]["in"]["in"]["received"] > 0


def test_in_process_hops_keep_a_trace_entry_per_node(tmp_path):
    """A fused chain's sink sees every node on its trace, with each node's own compute time."""
    from emgflow.benchmark import run_graph_latency

    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 500, count: 100}}
          a: {type: relay, inputs: {in: source.out}, group: g}
          b: {type: relay, inputs: {in: a.out}, group: g}
          sink: {type: discard, inputs: {in: b.out}, group: g}
        """)
    nodes = run_graph_latency(g)
    lat = nodes["sink"]["latency"]
    assert len(lat["e2e_us"]) == 100
    assert {"hop 0:source", "hop 1:a", "hop 2:b", "hop 0:source->a", "hop 1:a->b", "hop 2:b->*"} <= set(lat)
    assert all(v >= 0 for v in lat["hop 1:a"])
    assert nodes["sink"]["stats"]["in"]["in"]["received"] == 100


def test_crash_in_a_group_names_the_node_and_the_group_restarts(tmp_path):
    (tmp_path / "crashy.py").write_text(CRASHY)
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200, count: 2000}}
          r: {type: relay, inputs: {in: source.out}, group: work}
          c: {type: "crashy:Crashy", inputs: {in: r.out}, group: work, restart: on-failure, max_restarts: 1,
              restart_delay_s: 0.1}
          sink: {type: discard, inputs: {in: c.out}}
        """)
    proc = start_run(g, env={"PYTHONPATH": str(tmp_path)})
    _, err = proc.communicate(timeout=60)
    assert "c: crashed: RuntimeError: boom at message 5" in err and "Traceback" in err
    assert "work: restarting" in err and "restart 1/1" in err
    assert proc.returncode == 1
    assert "node 'c' (group 'work') failed after 1 restart(s)" in err


def test_sigkill_of_a_group_process_restarts_the_group(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200}}
          a: {type: relay, inputs: {in: source.out}, group: work, restart: on-failure, restart_delay_s: 0.1}
          b: {type: relay, inputs: {in: a.out}, group: work}
          rec: {type: npz, inputs: {in: b.out}, params: {path: rec.npz}}
        """)
    proc = start_run(g, "--stats", str(tmp_path / "stats.json"))
    assert wait_for(lambda: len(children_of(proc.pid)) == 3, 30)
    kids = children_of(proc.pid)
    assert wait_for(lambda: flushed(tmp_path / "rec.npz"), 30)
    group_pid = [k for k in kids if '"name": "work"' in open(f"/proc/{k}/cmdline").read()]
    assert len(group_pid) == 1
    os.kill(group_pid[0], signal.SIGKILL)
    assert wait_for(lambda: len(k := children_of(proc.pid)) == 3 and group_pid[0] not in k, 30)  # one snapshot
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "work: exited with code -9" in err and "restart 1/3" in err
    nodes = json.loads((tmp_path / "stats.json").read_text())["nodes"]
    assert nodes["a"]["restarts"] == nodes["b"]["restarts"] == 1
    assert not [k for k in kids if alive(k)]


def test_graph_shows_groups_and_validation_refuses_a_bad_group(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200}}
          a: {type: relay, inputs: {in: source.out}, group: work}
          b: {type: discard, inputs: {in: a.out}, group: work}
        """)
    out = CliRunner().invoke(app, ["graph", str(g)])
    assert out.exit_code == 0, out.output
    assert "3 nodes in 2 processes" in out.output and "group work: a, b" in out.output
    assert load_graph(g).fused().processes() == {"fused": ["source"], "work": ["a", "b"]}
    bad = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200}}
          a: {type: discard, inputs: {in: source.out}, group: source}
        """, "bad.yaml")
    out = CliRunner().invoke(app, ["validate", str(bad)])
    assert out.exit_code == 2
    assert "bad.yaml:4:" in out.output and "has the name of another node" in out.output
