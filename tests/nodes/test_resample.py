"""Decimate: chunked streaming equals the offline twin on real 2 kHz EMG; the anti-alias filter works."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.resample import Decimate, antialias, decimate


@pytest.fixture(scope="module")
def facial(data_dir):
    return np.loadtxt(data_dir / "emgflow-facial-sample/sample_data_04.csv", delimiter=",", skiprows=1,
                      encoding="utf-8-sig")[:, 1:]


@pytest.mark.parametrize("factor,seed", [(4, 0), (3, 1), (10, 2)])
def test_decimate_equals_offline_twin(facial, factor, seed):
    out = run_node(Decimate(factor=factor), chunk(facial, np.random.default_rng(seed), rate=2000.0, max_size=37))
    got = concat(out["out"])
    np.testing.assert_allclose(got, decimate(facial, factor, antialias(factor)), rtol=1e-9, atol=1e-12)
    assert len(got) == -(-len(facial) // factor)
    assert out["out"][0].rate == 2000.0 / factor and out["out"][0].start == 0


def test_antialias_attenuates_above_output_nyquist():
    w, h = signal.sosfreqz(antialias(4), worN=[0.8 / 4 * np.pi, np.pi / 4, 0.4 * np.pi])
    gain_db = 20 * np.log10(np.abs(h))
    assert -3.1 < gain_db[0] < -2.9  # corner at 0.8 x output Nyquist
    assert gain_db[1] < -12 and gain_db[2] < -40


def test_describe_divides_the_rate():
    assert Decimate(factor=4).describe({"in": StreamInfo(2048.0, 64)})["out"] == StreamInfo(512.0, 64)
