"""Window node: every window exactly once, whatever the chunking, with labels (SlidingWindows itself:
tests/core/test_streaming.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.nodes.window import Window
from emgflow.streaming import sliding_windows
from emgflow.testing import chunk, concat, run_node

RATE = 200.0


@pytest.fixture(scope="module")
def readings(data_dir):
    """Myo readings, participant 12345 session 1, fist file: 8 int8 channels + per-sample 0/7 label."""
    a = np.loadtxt(data_dir / "myo-readings-dataset/_readings_right_hand/12345-1/7.txt", delimiter=",",
                   dtype=np.int64)
    return a[:6000, :8], a[:6000, 8:9]


def test_window_node_outputs_stacked_windows_and_labels(readings):
    emg, labels = readings
    rng = np.random.default_rng(7)
    # Data and labels arrive in different chunkings, interleaved at random (each port in order).
    queues = {"in": chunk(emg, rng, rate=RATE, max_size=70), "labels": chunk(labels, rng, rate=RATE, max_size=90)}
    merged = []
    while queues["in"] or queues["labels"]:
        port = str(rng.choice([p for p, q in queues.items() if q]))
        merged.append((port, queues[port].pop(0)))
    out = run_node(Window(window=40, step=20), merged)
    windows, lab = concat(out["out"]), concat(out["label"])
    expected = sliding_windows(emg, 40, 20)
    np.testing.assert_array_equal(windows, expected)
    np.testing.assert_array_equal(lab[:, 0], labels[39::20, 0])
    assert out["out"][0].rate == out["label"][0].rate == RATE / 20
    assert {0, 7} <= set(lab[:, 0])


def test_majority_label_and_ms_sizes(readings):
    emg, labels = readings
    node = Window(window_ms=250, step_ms=50, label_mode="majority")  # 50 / 10 samples at 200 Hz
    items = [("labels", m) for m in chunk(labels, np.random.default_rng(8), rate=RATE)]
    items += [("in", m) for m in chunk(emg, np.random.default_rng(9), rate=RATE)]
    out = run_node(node, items)
    lab_windows = sliding_windows(labels, 50, 10)[:, :, 0]
    majority = np.array([np.bincount(w).argmax() for w in lab_windows])
    np.testing.assert_array_equal(concat(out["label"])[:, 0], majority)
    assert concat(out["out"]).shape == (len(lab_windows), 50, 8)
    # majority and last differ at transitions: the test would catch a mode mix-up
    assert (majority != lab_windows[:, -1]).any()


def test_params_are_checked():
    with pytest.raises(ParamError, match="window"):
        Window(window=40, window_ms=200, step=8)
    with pytest.raises(ParamError, match="step"):
        Window(window=40)
    with pytest.raises(ParamError, match="window_ms"):
        Window(window_ms=200, step=8).describe({"in": StreamInfo(rate=None, channels=8)})
    info = Window(window_ms=200, step_ms=40).describe({"in": StreamInfo(rate=RATE, channels=8)})
    assert info["out"] == StreamInfo(rate=25.0, channels=8, row_values=40 * 8)  # a row is a window


def test_overlaps_are_trimmed_and_gaps_counted(readings):
    emg, _ = readings
    msgs = chunk(emg[:1000], np.random.default_rng(10), rate=RATE, max_size=50)
    overlapping = msgs[:5] + [msgs[5].replace(data=emg[msgs[4].start:msgs[5].end], start=msgs[4].start)] + msgs[6:]
    node = Window(window=40, step=8)
    np.testing.assert_array_equal(concat(run_node(node, overlapping)["out"]), sliding_windows(emg[:1000], 40, 8))
    assert node.counters["in.overlap"] == len(msgs[4].data)
    lost = msgs[:5] + msgs[7:]  # two messages lost upstream: the rest is windowed as contiguous
    node = Window(window=40, step=8)
    out = run_node(node, lost)["out"]
    gap = msgs[5].data.shape[0] + msgs[6].data.shape[0]
    assert node.counters["in.gap"] == gap
    np.testing.assert_array_equal(concat(out), sliding_windows(np.concatenate([m.data for m in lost]), 40, 8))
