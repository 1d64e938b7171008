"""Normalize: calibration, given statistics and the .npz round trip equal the offline computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.normalize import Normalize, Stats

RATE = 200.0


@pytest.fixture(scope="module")
def grip(data_dir):
    """Myo grip-force recording v8: 8 raw int16 channels at 200 Hz, first 30 s."""
    return sio.loadmat(data_dir / "myo-grip-force/recording_force_v8.mat")["emg"][:6000]


@pytest.mark.parametrize("method", ["zscore", "minmax"])
def test_calibration_then_file_round_trip(grip, tmp_path, method):
    path = tmp_path / "stats.npz"
    node = Normalize(method=method, calibrate_s=2.0, stats_file=str(path))
    out = run_node(node, chunk(grip, np.random.default_rng(0), rate=RATE, max_size=90))["out"]
    calib = grip[:400].astype(np.float64)
    if method == "zscore":
        expected = (grip[400:] - calib.mean(axis=0)) / calib.std(axis=0)
    else:
        expected = (grip[400:] - calib.min(axis=0)) / (calib.max(axis=0) - calib.min(axis=0))
    assert out[0].start == 400  # drop mode: rows keep their sample index
    np.testing.assert_allclose(concat(out), expected, rtol=1e-12)
    # The saved statistics reproduce the same normalisation from the first sample on.
    loaded = run_node(Normalize(method=method, stats_file=str(path)), chunk(grip, np.random.default_rng(1),
                                                                             rate=RATE))["out"]
    np.testing.assert_allclose(concat(loaded)[400:], expected, rtol=1e-12)
    assert Stats.load(path).method == method


def test_pass_mode_publishes_raw_rows_during_calibration(grip):
    out = run_node(Normalize(calibrate_s=1.0, during_calibration="pass"),
                   chunk(grip, np.random.default_rng(2), rate=RATE, max_size=70))["out"]
    got = concat(out)
    assert out[0].start == 0 and got.shape == grip.shape
    np.testing.assert_array_equal(got[:200], grip[:200])
    stats = Stats.learn(grip[:200], "zscore")
    np.testing.assert_allclose(got[200:], stats.apply(grip[200:]), rtol=1e-12)


def test_given_statistics(grip):
    lo, hi = grip.min(axis=0).tolist(), grip.max(axis=0).tolist()
    got = concat(run_node(Normalize(method="minmax", min=lo, max=hi), chunk(grip, np.random.default_rng(3),
                                                                            rate=RATE))["out"])
    assert got.min() == 0.0 and got.max() == 1.0
    np.testing.assert_allclose(got, (grip - np.array(lo)) / (np.array(hi) - np.array(lo)))


def test_params_are_checked(tmp_path):
    with pytest.raises(ParamError, match="exactly one way"):
        Normalize()
    with pytest.raises(ParamError, match="exactly one way"):
        Normalize(mean=[0.0], std=[1.0], calibrate_s=2.0)
    with pytest.raises(ParamError, match="not used"):
        Normalize(mean=[0.0], std=[1.0], min=[0.0])
    with pytest.raises(ParamError, match="std must be > 0"):
        Normalize(mean=[0.0, 1.0], std=[1.0, 0.0])
    with pytest.raises(ParamError, match="not found"):
        Normalize(stats_file=str(tmp_path / "missing.npz"))
    with pytest.raises(ParamError, match="channel"):
        Normalize(mean=[0.0] * 4, std=[1.0] * 4).describe({"in": StreamInfo(rate=RATE, channels=8)})
