"""The print and discard sinks on a real recording: print shows one readable line per `every` messages
(long rows shortened, empty messages too), and discard's input is counted by the runtime, message for message."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emgflow.message import Msg
from emgflow.recordings import Recording, load
from emgflow.testing import chunk, run_node
from emgflow.nodes.debug import Print

from ..e2e.procs import kill_started, start_run

DB5 = "ninapro-db5-e1/s1/S1_E1_A1.mat"
LINE = re.compile(r"look start=(\d+) shape=\((\d+), (\d+)\) last=\[(.*)\]")


@pytest.fixture(scope="module")
def db5_path(recording_file) -> Path:
    return recording_file(DB5)


@pytest.fixture(scope="module")
def db5(db5_path) -> Recording:
    return load(db5_path)


def printed_values(body: str) -> np.ndarray:
    return np.array([float(v) for v in body.split() if v != "..."])


@pytest.mark.parametrize("stream", ["emg", "glove"])
@pytest.mark.parametrize("every", [1, 7])
def test_print_shows_one_line_per_every_messages(db5, capsys, stream, every):
    """16-channel EMG is shown whole; the 22-channel glove is summarised (first and last 3 values);
    either way one line per printed message, with its start, shape and newest row to 3 decimals."""
    x = db5.emg[:3000] if stream == "emg" else db5.streams["glove"][:3000]
    msgs = chunk(x, np.random.default_rng(every), rate=db5.rate, max_size=64)
    assert run_node(Print("look", every=every), msgs) == {}
    lines = capsys.readouterr().out.splitlines()
    shown = msgs[::every]
    assert len(lines) == len(shown)
    for line, msg in zip(lines, shown):
        match = LINE.fullmatch(line)
        assert match, line
        assert int(match[1]) == msg.start and (int(match[2]), int(match[3])) == msg.data.shape
        newest = msg.data[-1]
        want = newest if len(newest) <= 16 else np.r_[newest[:3], newest[-3:]]
        np.testing.assert_allclose(printed_values(match[4]), want, atol=6e-4, rtol=0)


def test_print_keeps_a_16_channel_float_row_on_one_line(db5, capsys):
    """16 float values of the glove: one line per printed message, all 16 values shown."""
    msgs = chunk(db5.streams["glove"][:2000, :16], np.random.default_rng(0), rate=db5.rate, max_size=64)
    run_node(Print("look", every=5), msgs)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(msgs[::5])
    assert all(len(printed_values(LINE.fullmatch(line)[4])) == 16 for line in lines)


def test_print_shows_empty_scalar_and_window_messages_on_one_line(capsys):
    """A message with no rows prints `last=[]` (no IndexError); a scalar prints its value; a stack of
    (15, 16) windows prints the newest window's first and last 3 values."""
    windows = np.arange(3 * 15 * 16, dtype=np.float32).reshape(3, 15, 16)
    run_node(Print("look"), [Msg(np.zeros((0, 16), np.float32), 200.0, 0), Msg(np.int32(7), 0.0, 0),
                             Msg(windows, 10.0, 3)])
    assert capsys.readouterr().out.splitlines() == [
        "look start=0 shape=(0, 16) last=[]",
        "look start=0 shape=() last=[7]",
        "look start=3 shape=(3, 15, 16) last=[480.000 481.000 482.000 ... 717.000 718.000 719.000]"]


@pytest.mark.timeout(60)
def test_discard_and_print_in_a_running_graph(tmp_path, db5_path):
    """replay (1000 rows in chunks of 7 = 143 messages) -> discard and print(every 10): the runtime counts
    143 messages received by discard, none dropped or out of sequence; print writes 15 lines to stdout."""
    graph = tmp_path / "g.yaml"
    graph.write_text(textwrap.dedent(f"""
        name: sinks
        nodes:
          source: {{type: replay, params: {{path: {db5_path}, speed: 0, chunk: 7, stop_s: 5}}}}
          sink: {{type: discard, inputs: {{in: source.emg}}}}
          look: {{type: print, inputs: {{in: source.emg}}, params: {{every: 10}}}}
        """))
    stats = tmp_path / "stats.json"
    proc = start_run(graph, "--stats", str(stats))
    try:
        out, err = proc.communicate(timeout=50)
    finally:
        kill_started()
    assert proc.returncode == 0, err
    figures = json.loads(stats.read_text())["nodes"]
    for node in ("sink", "look"):
        port = figures[node]["in"]["in"]
        assert {k: port[k] for k in ("received", "dropped", "gaps", "nonfinite", "restarts")} == {
            "received": 143, "dropped": 0, "gaps": 0, "nonfinite": 0, "restarts": 0}, node
    lines = [line for line in out.splitlines() if line.startswith("look ")]
    assert [int(LINE.fullmatch(line)[1]) for line in lines] == list(range(0, 1000, 70))
