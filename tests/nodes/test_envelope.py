"""Envelope nodes: streaming output equals the offline numpy/scipy computation on real EMG."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from scipy import signal

from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.envelope import MovingAverageNode, Mav, Rectify, Rms

RATE = 200.0


@pytest.fixture(scope="module")
def db5(data_dir):
    """Ninapro DB5 S1, first 20 s of the raw 16-channel double-Myo EMG (int8 values as float32)."""
    return sio.loadmat(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")["emg"][:4000]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rms_equals_offline_sliding_window_rms(db5, seed):
    window, step = 40, 8
    out = run_node(Rms(), chunk(db5, np.random.default_rng(seed), rate=RATE, max_size=50))["out"]
    got = concat(out)
    offline = np.lib.stride_tricks.sliding_window_view(db5.astype(np.float64), window, axis=0)[::step]
    expected = np.sqrt(np.mean(offline ** 2, axis=-1))
    assert out[0].start == 0 and out[0].rate == RATE / step
    assert got.shape == expected.shape == ((len(db5) - window) // step + 1, 16)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_rms_window_published_when_its_last_sample_arrives(db5):
    node = Rms(window=40, step=8)
    node.setup()
    assert node.process(chunk(db5[:39], rate=RATE)[0]) is None
    msg = node.process(chunk(db5[39:40], rate=RATE, start=39)[0])
    assert msg is not None and msg.start == 0 and len(msg.data) == 1
    msg = node.process(chunk(db5[40:56], rate=RATE, start=40)[0])  # completes windows 1 (ends 48) and 2 (ends 56)
    assert msg.start == 1 and len(msg.data) == 2


def test_mav_equals_offline(db5):
    out = concat(run_node(Mav(window=50, step=10), chunk(db5, np.random.default_rng(3), rate=RATE))["out"])
    offline = np.lib.stride_tricks.sliding_window_view(db5.astype(np.float64), 50, axis=0)[::10]
    np.testing.assert_allclose(out, np.abs(offline).mean(axis=-1), rtol=1e-12)


def test_rectify_and_moving_average_equal_offline(db5):
    msgs = chunk(db5, np.random.default_rng(4), rate=RATE, max_size=30)
    np.testing.assert_array_equal(concat(run_node(Rectify(), msgs)["out"]), np.abs(db5))
    got = concat(run_node(MovingAverageNode(window=25), msgs)["out"])
    np.testing.assert_allclose(got, signal.lfilter(np.ones(25) / 25, 1, db5.astype(np.float64), axis=0),
                               rtol=1e-9, atol=1e-9)


def test_malformed_and_repeated_messages_are_counted_and_dropped(db5):
    msgs = chunk(db5[:400], np.random.default_rng(5), rate=RATE)
    bad = msgs[:3] + [msgs[2], msgs[3].replace(data=db5[:5, :3]), msgs[3].replace(data=np.zeros(4))] + msgs[3:]
    node = Rms()
    got = concat(run_node(node, bad)["out"])
    expected = concat(run_node(Rms(), msgs)["out"])
    np.testing.assert_array_equal(got, expected)
    assert node.counters == {"in.duplicate": 1, "in.malformed": 2}
