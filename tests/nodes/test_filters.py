"""Filter nodes: chunked streaming equals sosfilt over the whole real recording; bad corners refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.filters import Bandpass, Highpass, Lowpass, Notch, filter_offline


@pytest.fixture(scope="module")
def tdc(data_dir):
    """3DC Participant1 power grip, 1000 Hz, 10 channels; channel 2 (column 1) is mains-dominated."""
    return np.loadtxt(data_dir / "3dc-armband/Participant1/train/EMG/3dc_EMG_gesture_0_7.txt", delimiter=",")


@pytest.fixture(scope="module")
def facial(data_dir):
    """Raw facial sEMG, 2 channels at 2000 Hz (CSV with a BOM and a header; file 04 has no NULL rows)."""
    return np.loadtxt(data_dir / "emgflow-facial-sample/sample_data_04.csv", delimiter=",", skiprows=1,
                      encoding="utf-8-sig")[:, 1:]


def mains_power(x: np.ndarray) -> float:
    """Welch power in 58-63 Hz at 1000 Hz: the 3DC device clock puts the 60 Hz hum near 60.6 Hz."""
    f, p = signal.welch(x, fs=1000, nperseg=1000)
    return float(p[(f >= 58) & (f <= 63)].sum())


@pytest.mark.parametrize("init", ["zero", "steady"])
def test_notch_on_mains_channel_equals_offline(tdc, init):
    node = Notch(freq=60, q=10, init=init)
    out = run_node(node, chunk(tdc, np.random.default_rng(0), rate=1000.0, max_size=100))["out"]
    got = concat(out)
    sos = signal.tf2sos(*signal.iirnotch(60, 10, fs=1000))
    expected = filter_offline(sos, tdc, init)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
    # And it is a notch: the hum on the mains-dominated channel drops by more than 10 dB.
    assert mains_power(got[1000:, 1]) < mains_power(tdc[1000:, 1]) / 10


def test_steady_init_equals_sosfilt_with_scaled_zi(tdc):
    sos = signal.tf2sos(*signal.iirnotch(60, 30, fs=1000))
    zi = signal.sosfilt_zi(sos)[:, :, None] * tdc[0][None, None, :]
    np.testing.assert_allclose(filter_offline(sos, tdc, "steady"), signal.sosfilt(sos, tdc, axis=0, zi=zi)[0])


def test_bandpass_on_facial_2khz_equals_offline(facial):
    out = run_node(Bandpass(low=20, high=450, order=4), chunk(facial, np.random.default_rng(1), rate=2000.0))
    sos = signal.butter(4, [20, 450], btype="bandpass", fs=2000, output="sos")
    expected = signal.sosfilt(sos, facial, axis=0)
    np.testing.assert_allclose(concat(out["out"]), expected, rtol=1e-9, atol=1e-12)
    assert out["out"][0].rate == 2000.0


def test_highpass_and_lowpass_equal_offline(facial):
    msgs = chunk(facial, np.random.default_rng(2), rate=2000.0, max_size=200)
    for node, sos in ((Highpass(cutoff=20, order=2), signal.butter(2, 20, "highpass", fs=2000, output="sos")),
                      (Lowpass(cutoff=10, order=4), signal.butter(4, 10, "lowpass", fs=2000, output="sos"))):
        np.testing.assert_allclose(concat(run_node(node, msgs)["out"]), signal.sosfilt(sos, facial, axis=0),
                                   rtol=1e-9, atol=1e-12)


def test_corners_checked_against_the_stream_rate():
    myo = {"in": StreamInfo(rate=200.0, channels=8)}
    with pytest.raises(ParamError, match=r"high=450 Hz is at or above Nyquist \(100 Hz\) for a 200 Hz stream"):
        Bandpass(low=20, high=450).describe(myo)
    with pytest.raises(ParamError, match="freq"):
        Notch(freq=100).describe(myo)
    with pytest.raises(ParamError, match="must be below"):
        Bandpass(low=100, high=50)
    with pytest.raises(ParamError, match="cutoff"):
        Highpass(cutoff=0)
    assert Bandpass(low=20, high=90).describe(myo) == {"out": myo["in"]}


def test_wrong_runtime_rate_fails_loudly(facial):
    with pytest.raises(ParamError, match="Nyquist"):
        run_node(Bandpass(low=20, high=450), chunk(facial[:100], rate=200.0))


def test_keep_input_emits_the_input_then_the_filtered_channels(facial):
    """Two time scales side by side (what a multi-scale envelope model reads), still equal to offline."""
    msgs = chunk(np.abs(facial), np.random.default_rng(3), rate=2000.0, max_size=150)
    got = concat(run_node(Lowpass(cutoff=1.0, order=1, keep_input=True), msgs)["out"])
    sos = signal.butter(1, 1.0, "lowpass", fs=2000, output="sos")
    np.testing.assert_array_equal(got[:, :2], np.abs(facial))
    np.testing.assert_allclose(got[:, 2:], signal.sosfilt(sos, np.abs(facial), axis=0), rtol=1e-9, atol=1e-12)
    info = Lowpass(cutoff=1.0, keep_input=True).describe({"in": StreamInfo(rate=2000.0, channels=2,
                                                                            names=("a", "b"))})["out"]
    assert info.channels == 4 and info.names == ("a", "b", "a_lowpass", "b_lowpass")
