"""Seed-model images: WP energies against pywt, and every image node chunked equals its offline function."""

from __future__ import annotations

import numpy as np
import pytest
import pywt

from emgflow.errors import ParamError
from emgflow.recordings import load
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.envelope import rms
from emgflow.nodes.images import (WP_BANDS, BandEnergy, EmgImage, LongExposure, WpImage, band_energy, emg_image,
                          long_exposure, minmax, wp_images_offline, wp_tree15)
from emgflow.streaming import sliding_windows


@pytest.fixture(scope="module")
def db1(data_dir):
    """A minute of Ninapro DB1 S1 envelopes (10 channels, 100 Hz)."""
    return load(data_dir / "ninapro-db1-e1/S1_A1_E1.mat").emg[20000:26000]


@pytest.fixture(scope="module")
def db5(data_dir):
    """Twenty seconds of raw Ninapro DB5 S1 Myo EMG (16 channels, 200 Hz)."""
    return load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat").emg[40000:44000]


def test_tree15_matches_pywt_packet_energies(db1):
    windows = sliding_windows(db1[:600], 15, 15)
    image = wp_tree15(windows)
    assert image.shape == windows.shape
    for n, c in [(0, 0), (7, 3), (39, 9)]:
        x = np.pad(windows[n, :, c].astype(np.float64), (0, 1), mode="symmetric")
        tree = pywt.WaveletPacket(x, "db1", maxlevel=3)
        ref = [np.sum(x ** 2)] + [np.sum(node.data ** 2) for lvl in (1, 2, 3) for node in tree.get_level(lvl, "freq")]
        np.testing.assert_allclose(np.expm1(image[n, :, c]), ref, rtol=1e-5)


@pytest.mark.parametrize("band", WP_BANDS)
def test_band_energy_matches_pywt(db5, band):
    sub = sliding_windows(db5[:200], 16, 7)
    ref = [[np.sum(pywt.WaveletPacket(sub[i, :, c].astype(np.float64), "db1", maxlevel=2)[band].data ** 2)
            for c in range(sub.shape[2])] for i in range(len(sub))]
    np.testing.assert_allclose(band_energy(sub, band), ref, rtol=1e-9)


def test_band_energy_is_causal_with_zero_history(db5):
    x = db5[:100].astype(np.float64)
    e = BandEnergy("ad").push(x)
    padded = np.concatenate([np.zeros((15, x.shape[1])), x])
    np.testing.assert_allclose(e, np.log1p(band_energy(sliding_windows(padded, 16, 1), "ad")))


def test_minmax_scales_each_image_and_zeroes_constant_ones():
    imgs = np.stack([np.arange(6.0).reshape(2, 3), np.full((2, 3), 4.0)])
    out = minmax(imgs)
    np.testing.assert_allclose(out[0], np.arange(6.0).reshape(2, 3) / 5)
    assert not out[1].any()


@pytest.mark.parametrize("norm", ["minmax", "none"])
def test_emg_image_node_chunked_equals_offline(db1, norm):
    node = EmgImage(window=15, step=5, norm=norm)
    out = run_node(node, chunk(db1, np.random.default_rng(1), rate=100.0, max_size=40))["out"]
    got = concat(out)
    want = emg_image(sliding_windows(db1, 15, 5), norm)
    assert got.shape == (len(want), 1, 15, 10) and out[0].rate == 20.0 and out[0].start == 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["tree15", "framewise"])
def test_wp_image_node_chunked_equals_offline(db1, mode):
    node = WpImage(window=15, step=15, mode=mode, band="ad")
    got = concat(run_node(node, chunk(db1, np.random.default_rng(2), rate=100.0, max_size=50))["out"])
    want = wp_images_offline(db1, 15, 15, mode, "ad")
    assert got.shape == (len(db1) // 15, 2, 15, 10)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got[:, 0], emg_image(sliding_windows(db1, 15, 15))[:, 0])


def test_framewise_wp_image_allows_other_heights(db1):
    got = concat(run_node(WpImage(window=20, step=10, mode="framewise"), chunk(db1, [33], rate=100.0))["out"])
    assert got.shape[1:] == (2, 20, 10)
    np.testing.assert_allclose(got, wp_images_offline(db1, 20, 10, "framewise"), rtol=1e-6, atol=1e-7)


def test_tree15_refuses_other_window_lengths():
    with pytest.raises(ParamError, match="window"):
        WpImage(window=20, mode="tree15")


def test_long_exposure_over_rms_frames_chunked_equals_offline(db5):
    frames = rms(sliding_windows(db5, 40, 10))
    node = LongExposure(window=20, step=1)
    got = concat(run_node(node, chunk(frames, np.random.default_rng(3), rate=20.0, max_size=9))["out"])
    want = long_exposure(sliding_windows(frames, 20, 1))
    assert got.shape == (len(frames) - 19, 16, 20)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got[5, :, -1], frames[24], rtol=1e-6)  # last column = newest frame


def test_log_long_exposure_chunked_equals_offline_log_of_rms(db5):
    frames = rms(sliding_windows(db5, 40, 10))
    node = LongExposure(window=20, step=5, norm="log")
    got = concat(run_node(node, chunk(frames, np.random.default_rng(4), rate=20.0, max_size=7))["out"])
    np.testing.assert_allclose(got, long_exposure(sliding_windows(frames, 20, 5), "log"), rtol=1e-6)
    np.testing.assert_allclose(got[0, :, -1], np.log(frames[19] + 0.01), rtol=1e-5)
