"""SlidingWindows: every window exactly once, whatever the chunking, as sliding_windows offline."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.streaming import SlidingWindows


@pytest.fixture(scope="module")
def emg(data_dir):
    """8 int8 Myo channels: participant 12345 session 1, fist file, first 6000 samples."""
    path = data_dir / "myo-readings-dataset/_readings_right_hand/12345-1/7.txt"
    return np.loadtxt(path, delimiter=",", dtype=np.int64)[:6000, :8]


@pytest.mark.parametrize("window,step", [(40, 8), (50, 50), (10, 25), (1, 1)])
def test_sliding_windows_any_chunking_matches_offline(emg, window, step):
    rng = np.random.default_rng(window * 100 + step)
    sw, parts, i = SlidingWindows(window, step), [], 0
    while i < len(emg):
        n = int(rng.integers(0, 3 * window + 2))  # includes empty and window-spanning chunks
        parts.append(sw.push(emg[i:i + n]).copy())
        i += n
    expected = np.moveaxis(np.lib.stride_tricks.sliding_window_view(emg, window, axis=0)[::step], -1, 1)
    np.testing.assert_array_equal(np.concatenate(parts), expected)
    assert sw.next_window == len(expected)
