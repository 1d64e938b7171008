"""Features: each definition against a plain per-window reference, and the node against extract()."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from scipy import linalg, stats

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.features import DEVICE_THRESHOLDS, Features, expand, extract, feature_names
from emgflow.streaming import sliding_windows

ALL = ["MAV", "RMS", "WL", "ZC", "SSC", "VAR", "IAV", "WAMP", "LD", "AR", "ACT", "MOB", "COMP", "LS", "MFL", "MSR"]


@pytest.fixture(scope="module")
def db5(data_dir):
    """Ninapro DB5 S1: first 30 s of the upper Myo (8 int8 channels) and the per-sample labels."""
    m = sio.loadmat(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    return m["emg"][:6000, :8], m["restimulus"][:6000, 0]


def reference(w: np.ndarray, zc: float, ssc: float, wamp: float, order: int) -> dict[str, np.ndarray]:
    """Textbook definitions for one window of one channel, written out plainly."""
    d = np.diff(w)
    n = len(w)
    r = np.array([np.dot(w[:n - k], w[k:]) / n for k in range(order + 1)])
    hjorth_mob = np.sqrt(np.var(d) / np.var(w))
    return {
        "MAV": np.mean(np.abs(w)), "RMS": np.sqrt(np.mean(w ** 2)), "WL": np.sum(np.abs(d)),
        "ZC": sum(1 for i in range(n - 1) if w[i] * w[i + 1] < 0 and abs(w[i] - w[i + 1]) >= zc),
        "SSC": sum(1 for i in range(1, n - 1) if (w[i] - w[i - 1]) * (w[i] - w[i + 1]) >= ssc),
        "VAR": np.var(w), "IAV": np.sum(np.abs(w)), "WAMP": np.sum(np.abs(d) > wamp),
        "LD": np.exp(np.mean(np.log(np.abs(w) + 1))),
        "AR": linalg.solve_toeplitz(r[:order], r[1:]),
        "ACT": np.var(w), "MOB": hjorth_mob, "COMP": np.sqrt(np.var(np.diff(d)) / np.var(d)) / hjorth_mob,
        "LS": stats.lmoment(w, order=2),
        "MFL": np.log10(np.sum(np.abs(d))),
        "MSR": np.abs(np.mean(np.sqrt(w.astype(complex)))),  # LibEMG's definition
    }


def test_every_feature_matches_its_plain_definition(db5):
    emg, _ = db5
    windows = sliding_windows(emg[1000:3000].astype(np.float64), 40, 40)[::5]  # 10 windows, rest and movement
    th = DEVICE_THRESHOLDS["myo"]
    got = extract(windows, ALL, zc_threshold=th["zc"], ssc_threshold=th["ssc"], wamp_threshold=th["wamp"],
                  ar_order=3)
    names = feature_names(ALL, 8, ar_order=3)
    assert got.shape == (len(windows), len(names)) == (len(windows), 8 * 18)
    for i, win in enumerate(windows):
        for ch in range(8):
            ref = reference(win[:, ch], th["zc"], th["ssc"], th["wamp"], 3)
            row = dict(zip(names, got[i]))
            for feat, value in ref.items():
                keys = [f"ch{ch}:AR{k}" for k in (1, 2, 3)] if feat == "AR" else [f"ch{ch}:{feat}"]
                np.testing.assert_allclose([row[k] for k in keys], np.atleast_1d(value), rtol=1e-9, atol=1e-9,
                                           err_msg=f"{feat} window {i} channel {ch}")


def test_groups_and_layout():
    assert expand("HTD") == ("MAV", "ZC", "SSC", "WL")
    assert expand(["tdar", "RMS", "MAV"]) == ("MAV", "ZC", "SSC", "WL", "AR", "RMS")
    assert expand("LS4") == ("LS", "MFL", "MSR", "WAMP")
    assert feature_names("TDAR", 2, ar_order=2) == [
        "ch0:MAV", "ch0:ZC", "ch0:SSC", "ch0:WL", "ch0:AR1", "ch0:AR2",
        "ch1:MAV", "ch1:ZC", "ch1:SSC", "ch1:WL", "ch1:AR1", "ch1:AR2"]
    with pytest.raises(ValueError, match="unknown feature 'FOO'"):
        expand(["HTD", "FOO"])


@pytest.mark.parametrize("seed", [0, 1])
def test_node_equals_offline_extract_with_device_thresholds(db5, seed):
    emg, _ = db5
    node = Features(features=["TDAR", "LS4", "HJORTH"], window=40, step=8, device="myo")
    out = run_node(node, chunk(emg, np.random.default_rng(seed), rate=200.0, max_size=60))["out"]
    th = DEVICE_THRESHOLDS["myo"]
    expected = extract(sliding_windows(emg, 40, 8), ["TDAR", "LS4", "HJORTH"], zc_threshold=th["zc"],
                       ssc_threshold=th["ssc"], wamp_threshold=th["wamp"])
    np.testing.assert_allclose(concat(out), expected, rtol=1e-9, atol=1e-12)
    assert out[0].meta["features"] == feature_names(["TDAR", "LS4", "HJORTH"], 8)
    assert all("features" not in m.meta for m in out[1:])
    assert out[0].rate == 25.0


def test_myo_wamp_threshold_separates_rest_from_movement(db5):
    emg, labels = db5
    windows, win_labels = sliding_windows(emg, 40, 8), sliding_windows(labels[:, None], 40, 8)[:, -1, 0]
    wamp = extract(windows, "WAMP", wamp_threshold=DEVICE_THRESHOLDS["myo"]["wamp"]).mean(axis=1)
    assert np.median(wamp[win_labels > 0]) > 2 * np.median(wamp[win_labels == 0])


def test_params_are_checked():
    with pytest.raises(ParamError, match="features"):
        Features(features=["HTD", "MAVV"])
    with pytest.raises(ParamError, match="window"):
        Features(window=2)
    with pytest.raises(ParamError, match="ar_order"):
        Features(features="TDAR", window=8, ar_order=8)
    info = Features(features="HTD", window=40, step=8).describe(
        {"in": StreamInfo(rate=200.0, channels=2, names=("a", "b"))})["out"]
    assert info.rate == 25.0 and info.channels == 8 and info.names[:2] == ("a:MAV", "a:ZC")
