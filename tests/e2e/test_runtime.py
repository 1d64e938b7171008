"""The runtime with real processes: delivery, equivalence, supervision, signals, orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emgflow.recordings import load

from .procs import alive, children_of, flushed, start_run, wait_for


def write(tmp_path, text: str, name: str = "g.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_first_sample_reaches_every_consumer(tmp_path):
    """No slow-joiner loss: sample 0 arrives at both consumers of a fan-out, and nothing is missing."""
    g = write(tmp_path, """
        name: fanout
        nodes:
          source: {type: pulse, params: {rate: 500, count: 40, channels: 3}}
          a: {type: npz, inputs: {in: source.out}, params: {path: a.npz}}
          mid: {type: relay, inputs: {in: source.out}}
          b: {type: npz, inputs: {in: mid.out}, params: {path: b.npz}}
        """)
    proc = start_run(g)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    for name in ("a.npz", "b.npz"):
        rec = np.load(tmp_path / name)
        assert int(rec["start"]) == 0
        np.testing.assert_array_equal(rec["emg"][:, 0], np.arange(40))


def test_streaming_rms_equals_offline_on_real_recording(tmp_path, data_dir):
    """replay -> rms -> npz through real processes equals numpy RMS over the whole recording."""
    path = data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat"
    g = write(tmp_path, f"""
        name: rms-equivalence
        nodes:
          source: {{type: replay, params: {{path: {path}, speed: 0, chunk: 7, stop_s: 20}}}}
          rms: {{type: rms, inputs: {{in: source.emg}}, params: {{window: 40, step: 8}}}}
          rec: {{type: npz, inputs: {{in: rms.out}}, params: {{path: rms.npz}}}}
        """)
    proc = start_run(g)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    x = load(path).emg[: 20 * 200].astype(np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(x, 40, axis=0)[::8]
    offline = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=-1))
    online = np.load(tmp_path / "rms.npz")["emg"]
    assert online.shape == offline.shape
    np.testing.assert_allclose(online, offline, rtol=1e-5, atol=1e-5)


def test_ctrl_c_stops_in_order_and_leaves_no_process(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200}}
          r: {type: relay, inputs: {in: source.out}}
          rec: {type: npz, inputs: {in: r.out}, params: {path: rec.npz}}
        """)
    proc = start_run(g)
    assert wait_for(lambda: len(children_of(proc.pid)) == 3, 30)
    kids = children_of(proc.pid)
    assert wait_for(lambda: flushed(tmp_path / "rec.npz"), 30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not [k for k in kids if alive(k)]
    rec = np.load(tmp_path / "rec.npz")  # the recorder flushed on the ordered stop
    np.testing.assert_array_equal(rec["emg"][:, 0], np.arange(len(rec["emg"])))


def test_sigkill_of_supervisor_leaves_no_orphans(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 100}}
          sink: {type: discard, inputs: {in: source.out}}
        """)
    proc = start_run(g)
    assert wait_for(lambda: len(children_of(proc.pid)) == 2, 30)
    kids = children_of(proc.pid)
    proc.kill()
    proc.wait()
    assert wait_for(lambda: not [k for k in kids if alive(k)], 10), "node processes outlived the supervisor"


def test_sigkill_of_node_is_reported_and_graph_stops(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 100}}
          sink: {type: discard, inputs: {in: source.out}}
        """)
    proc = start_run(g)
    assert wait_for(lambda: len(children_of(proc.pid)) == 2, 30)
    kids = children_of(proc.pid)
    os.kill(max(kids), signal.SIGKILL)  # the later-spawned node
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "exited with code -9" in err
    assert not [k for k in kids if alive(k)]


CRASHY = '''
from emgflow import In, Node, Out, Param

class Crashy(Node):
    """Raises on its Nth message (a test node)."""
    at = Param(int, 5)
    in_ = In()
    out = Out()

    def setup(self):
        self.n = 0

    def process(self, msg):
        self.n += 1
        if self.n == self.at:
            raise RuntimeError("boom at message %d" % self.n)
        return msg
'''


def test_crashed_node_is_restarted_per_policy(tmp_path):
    (tmp_path / "crashy.py").write_text(CRASHY)
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200, count: 2000}}
          c: {type: "crashy:Crashy", inputs: {in: source.out}, restart: on-failure, max_restarts: 2, restart_delay_s: 0.1}
          sink: {type: discard, inputs: {in: c.out}}
        """)
    proc = start_run(g, "--stats", str(tmp_path / "stats.json"), env={"PYTHONPATH": str(tmp_path)})
    _, err = proc.communicate(timeout=60)
    assert "boom at message 5" in err and "Traceback" in err
    assert "restart 1/2" in err and "restart 2/2" in err
    # the third crash exhausts the policy: the graph reports it and fails
    assert proc.returncode == 1
    assert json.loads((tmp_path / "stats.json").read_text())["nodes"]["c"]["restarts"] == 2


def test_duration_and_set_override(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 100, channels: 2}}
          rec: {type: npz, inputs: {in: source.out}, params: {path: rec.npz}}
        """)
    proc = start_run(g, "--duration", "1.5", "--set", "source.channels=5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    rec = np.load(tmp_path / "rec.npz")
    assert rec["emg"].shape[1] == 5 and 50 <= len(rec["emg"]) <= 250


def test_bench_graph_applies_set_and_reports_every_message(tmp_path):
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200, count: 500}}
          relay: {type: relay, inputs: {in: source.out}}
          sink: {type: discard, inputs: {in: relay.out}}
        """)
    out = tmp_path / "lat.json"
    proc = subprocess.run([sys.executable, "-m", "emgflow.cli.app", "bench", "graph", str(g), "--set",
                           "source.count=40", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["nodes"]["sink"]["e2e"]["n"] == 40 and result["dropped"] == 0
    assert set(result["nodes"]["sink"]["hops"]) >= {"0:source->relay", "1:relay->*"}
    assert out.with_suffix(".png").stat().st_size > 0


@pytest.mark.parametrize("transport", ["tcp"])
def test_tcp_transport(tmp_path, transport):
    g = write(tmp_path, f"""
        transport: {transport}
        nodes:
          source: {{type: pulse, params: {{rate: 1000, count: 30}}}}
          rec: {{type: npz, inputs: {{in: source.out}}, params: {{path: rec.npz}}}}
        """)
    proc = start_run(g)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(np.load(tmp_path / "rec.npz")["emg"]) == 30


TICKER = '''
import numpy as np
from emgflow import Msg, Node, Out

class Ticker(Node):
    """A source with no generate(): it emits from tick() every 10 ms (a test node)."""
    tick_ms = 10.0
    out = Out()

    def setup(self):
        self.k = 0

    def tick(self):
        self.k += 1
        return Msg(data=np.full((1, 1), self.k - 1, np.float32), rate=100.0, start=self.k - 1)
'''


def test_tick_only_source_runs(tmp_path):
    (tmp_path / "ticker.py").write_text(TICKER)
    g = write(tmp_path, """
        nodes:
          t: {type: "ticker:Ticker"}
          rec: {type: npz, inputs: {in: t.out}, params: {path: rec.npz}}
        """)
    proc = start_run(g, "--duration", "1.0", env={"PYTHONPATH": str(tmp_path)})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    ticks = np.load(tmp_path / "rec.npz")["emg"][:, 0]
    assert len(ticks) >= 20
    np.testing.assert_array_equal(ticks, np.arange(len(ticks)))


def test_a_hung_node_is_noticed_and_killed(tmp_path):
    """SIGSTOP freezes a node (no heartbeat from any of its threads): the supervisor kills it as hung
    and the graph fails; a node that merely works hard never trips this (its heartbeat thread beats)."""
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200}}
          r: {type: relay, inputs: {in: source.out}}
          sink: {type: discard, inputs: {in: r.out}}
        """)
    proc = start_run(g)
    assert wait_for(lambda: len(children_of(proc.pid)) == 3, 30)
    relay = [k for k in children_of(proc.pid) if b'"name": "r"' in open(f"/proc/{k}/cmdline", "rb").read()][0]
    spec = json.loads(open(f"/proc/{relay}/cmdline", "rb").read().split(b"\0")[-2])
    status = Path(spec["control"].removeprefix("ipc://")).parent / "status.json"  # written once the graph runs
    assert wait_for(lambda: status.exists() and json.loads(status.read_text())["nodes"]["r"]["state"] == "running", 60)
    os.kill(relay, signal.SIGSTOP)  # a running node: one frozen while it starts up is a start-up timeout
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "r: no heartbeat for 1 s: killing it" in err, err
