"""A restarted node's streams go on: consumers see one gap counted in rows, never a replay of indices."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time


from emgflow.recordings import RecordingError, load

from .procs import children_of, start_run, wait_for


def pid_of(run, node: str) -> int:
    pids = [k for k in children_of(run.pid) if f'"name": "{node}"'.encode() in open(f"/proc/{k}/cmdline", "rb").read()]
    assert len(pids) == 1, pids
    return pids[0]


def rows(path) -> int:
    """Rows an npz recorder has flushed so far (to its .emgrec: the .npz comes when it stops)."""
    try:
        return len(load(f"{path}.emgrec").emg)
    except RecordingError:
        return 0


def kill_and_resume(tmp_path, graph: str, victim: str, record: str) -> dict:
    """Run, SIGKILL ``victim`` once ``record`` holds rows, wait until the restarted process has
    added rows again, stop; the --stats figures."""
    g = tmp_path / "g.yaml"
    g.write_text(textwrap.dedent(graph))
    run = start_run(g, "--stats", str(tmp_path / "stats.json"))
    assert wait_for(lambda: rows(tmp_path / record) > 100, 60)
    old = pid_of(run, victim)
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: len(k := children_of(run.pid)) >= 3 and old not in k, 30)  # one snapshot
    before = rows(tmp_path / record)
    assert wait_for(lambda: rows(tmp_path / record) > before + 100, 30), "no data flowed after the restart"
    time.sleep(0.5)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert f"{victim}: exited with code -9" in err and "restart 1/3" in err
    return json.loads((tmp_path / "stats.json").read_text())["nodes"]


def test_a_restarted_source_continues_its_stream(tmp_path):
    nodes = kill_and_resume(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 100, samples: 2, channels: 2}, restart: on-failure, restart_delay_s: 0.1}
          rms: {type: rms, inputs: {in: source.out}, params: {window: 4, step: 2}}
          rec: {type: npz, inputs: {in: rms.out}, params: {path: rms.npz, flush_s: 0.2}}
          raw: {type: npz, inputs: {in: source.out}, params: {path: raw.npz, flush_s: 0.2}}
        """, victim="source", record="rms.npz")
    port = nodes["rms"]["in"]["in"]
    assert port["restarts"] == 1 and port["gaps"] == 0
    assert port["lost_rows"] > 0  # the restart took time: those rows are counted, not hidden
    counters = nodes["rms"]["counters"]
    assert counters.get("in.gap") == port["lost_rows"]
    assert "in.duplicate" not in counters and "in.overlap" not in counters
    raw = nodes["raw"]["in"]["in"]  # a recorder of the restarted stream marks the gap in its file
    (row, jump), = load(tmp_path / "raw.npz").meta["gaps"]["emg"]
    assert raw["restarts"] == 1 and jump == raw["lost_rows"] > 0 and 0 < row < raw["received"] * 2


def test_a_restarted_inner_node_continues_its_stream(tmp_path, data_dir):
    path = data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat"
    nodes = kill_and_resume(tmp_path, f"""
        nodes:
          source: {{type: replay, params: {{path: {path}, speed: 1}}}}
          rms: {{type: rms, inputs: {{in: source.emg}}, params: {{window: 40, step: 8}}, restart: on-failure,
                restart_delay_s: 0.1}}
          rec: {{type: npz, inputs: {{in: rms.out}}, params: {{path: rms.npz, flush_s: 0.2}}}}
        """, victim="rms", record="rms.npz")
    port = nodes["rec"]["in"]["in"]
    assert port["restarts"] == 1 and port["gaps"] == 0
    assert nodes["rms"]["restarts"] == 1
