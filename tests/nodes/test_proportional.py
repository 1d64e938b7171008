"""Proportional: streaming equals the offline twin; calibrated intensity tracks real grip force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.proportional import Proportional, activation, intensity
from emgflow.streaming import sliding_windows

RATE = 200.0


@pytest.fixture(scope="module")
def grip(data_dir):
    """Myo grip-force v8: 8 int8 EMG channels and FSR force at 200 Hz; rest for the first 6 s."""
    m = sio.loadmat(data_dir / "myo-grip-force/recording_force_v8.mat")
    return m["emg"], m["Force"].ravel().astype(np.float64)


def test_given_levels_equal_offline(grip):
    emg, _ = grip
    out = run_node(Proportional(rest=2.0, max=20.0), chunk(emg, np.random.default_rng(0), rate=RATE))["out"]
    got = concat(out)
    expected = intensity(sliding_windows(emg, 40, 8), 2.0, 20.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.min() == 0.0 and got.max() == 1.0 and out[0].rate == 25.0


def test_calibrated_intensity_tracks_force(grip):
    emg, force = grip
    node = Proportional(rest_s=5.0, max_s=5.0, window=40, step=8)
    out = run_node(node, chunk(emg, np.random.default_rng(1), rate=RATE, max_size=80))["out"]
    got = concat(out)[:, 0]
    windows = sliding_windows(emg, 40, 8)
    metric = activation(windows)
    last = np.arange(len(windows)) * 8 + 39
    rest, top = metric[last < 1000].mean(), np.percentile(metric[(last >= 1000) & (last < 2000)], 95)
    first = int(np.count_nonzero(last < 2000))  # windows used for calibration are not published
    assert out[0].start == first
    np.testing.assert_allclose(got, intensity(windows[first:], rest, top)[:, 0], rtol=1e-12)
    assert np.corrcoef(got, force[last[first:]])[0, 1] > 0.9  # measured 0.95


def test_params_are_checked():
    with pytest.raises(ParamError, match="rest"):
        Proportional(max=10.0)
    with pytest.raises(ParamError, match="max"):
        Proportional(rest=1.0, max=10.0, max_s=3.0)
    with pytest.raises(ParamError, match="above rest"):
        Proportional(rest=5.0, max=1.0)
    assert Proportional(rest=1.0, max=2.0, step=8).describe(
        {"in": StreamInfo(rate=RATE, channels=8)})["out"] == StreamInfo(rate=25.0, channels=1)
